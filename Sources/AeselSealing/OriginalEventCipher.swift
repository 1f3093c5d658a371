import CLibCrypto
import Foundation
public import NIOCore

/// The original's event encryption (reference section 2.5), kept only for its devices: AES-256-CBC with
/// PKCS#7 padding under one static key and IV per direction for the whole deployment, sent as base64
/// with a CRLF after every 72 characters. It has no integrity and no replay protection: anyone who
/// knows the deployment's key (every device does) can read and forge every device's events.
/// `--event-security sealed` is the protected mode; this is a compatibility option.
public struct OriginalEventCipher: Sendable {
    /// What the original configures and hands to devices at registration; `password` and `salt` are
    /// handed on but never used, as in the original.
    public struct Secret: Sendable, Hashable {
        public var key: String
        public var iv: String
        public var password: String
        public var salt: String

        public init(key: String, iv: String, password: String = "", salt: String = "") {
            self.key = key
            self.iv = iv
            self.password = password
            self.salt = salt
        }
    }

    public enum SecretError: Error, CustomStringConvertible {
        case tooShort(String)
        public var description: String {
            switch self { case .tooShort(let field): "the \(field) is too short: the key needs 32 characters, the IV 16" }
        }
    }

    /// A deployment's two secrets: the original's `in` (devices to CLyman) and `out` (CrazyIvan to devices).
    public struct Secrets: Sendable, Hashable {
        public var toPair: Secret
        public var toDevice: Secret

        public init(toPair: Secret, toDevice: Secret) {
            self.toPair = toPair
            self.toDevice = toDevice
        }
    }

    public let secret: Secret
    private let key: [UInt8]
    private let iv: [UInt8]
    static let lineLength = 72

    /// As the original: the key is the first 32 characters of `key` as ASCII bytes (not hex-decoded),
    /// the IV the first 16 of `iv`.
    public init(_ secret: Secret) throws {
        guard secret.key.utf8.count >= 32 else { throw SecretError.tooShort("key") }
        guard secret.iv.utf8.count >= 16 else { throw SecretError.tooShort("iv") }
        self.secret = secret
        key = Array(secret.key.utf8.prefix(32))
        iv = Array(secret.iv.utf8.prefix(16))
    }

    public func encrypt(_ plaintext: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        let ciphertext = plaintext.withUnsafeReadableBytes { cbc(encrypt: true, $0) }
        // Fails only without memory or with a broken libcrypto: nothing unencrypted may be sent instead.
        precondition(ciphertext != nil, "AES-256-CBC encryption failed")
        let text = Data(ciphertext!).base64EncodedString()
        var output = allocator.buffer(capacity: text.utf8.count + text.utf8.count / Self.lineLength * 2)
        var start = text.startIndex
        while start < text.endIndex {
            let end = text.index(start, offsetBy: Self.lineLength, limitedBy: text.endIndex) ?? text.endIndex
            if start != text.startIndex { output.writeStaticString("\r\n") }
            output.writeSubstring(text[start..<end])
            start = end
        }
        return output
    }

    /// The plaintext, or nil when the datagram is not base64 of a whole number of blocks that decrypt
    /// with valid padding (line breaks and other whitespace are ignored, as Poco's decoder does).
    public func decrypt(_ datagram: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        let text = datagram.withUnsafeReadableBytes { bytes in
            String(decoding: bytes.filter { !($0 == 0x0D || $0 == 0x0A || $0 == 0x20 || $0 == 0x09) }, as: UTF8.self)
        }
        guard let ciphertext = Data(base64Encoded: text), !ciphertext.isEmpty, ciphertext.count % 16 == 0,
            let plaintext = ciphertext.withUnsafeBytes({ cbc(encrypt: false, $0) })
        else { return nil }
        var buffer = allocator.buffer(capacity: plaintext.count)
        _ = plaintext.withUnsafeBytes { buffer.writeBytes($0) }
        return buffer
    }

    /// `input` encrypted or decrypted with the deployment's key and IV; nil when decryption finds no valid
    /// padding.
    private func cbc(encrypt: Bool, _ input: UnsafeRawBufferPointer) -> [UInt8]? {
        var output = [UInt8](repeating: 0, count: input.count + 16)
        let count = output.withUnsafeMutableBufferPointer { output in
            aesel_cbc(key, iv, encrypt ? 1 : 0, input.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(input.count), output.baseAddress)
        }
        return count < 0 ? nil : Array(output[0..<Int(count)])
    }
}
