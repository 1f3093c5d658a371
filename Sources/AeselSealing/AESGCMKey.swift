import CLibCrypto
import Synchronization

/// One AES-256-GCM key, ready to seal or open many datagrams: OpenSSL's context keeps the key schedule,
/// and each datagram sets only its nonce. swift-crypto's one-shot `AES.GCM` prepares the key again on
/// every call, which made a sealed copy cost five times as much (README, Performance, "Sealed events").
final class AESGCMKey: Sendable {
    static let nonceSize = 12
    static let tagSize = 16

    /// An OpenSSL context, only ever used under the lock of ``contexts``.
    private struct Context: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    /// Made at the first use of each, as a cipher mostly only seals or only opens.
    private struct Contexts: ~Copyable {
        var seal: Context?
        var open: Context?

        deinit {
            EVP_CIPHER_CTX_free(seal?.pointer)
            EVP_CIPHER_CTX_free(open?.pointer)
        }
    }

    private let key: [UInt8]
    /// A context holds one datagram's state while it works, so each is used by one thread at a time.
    private let contexts = Mutex(Contexts())

    init(_ key: [UInt8]) {
        precondition(key.count == 32, "AES-256 needs a 32-byte key")
        self.key = key
    }

    /// Seals `plaintext` into `ciphertext` (the same size) and `tag`, with the associated data `aad1`
    /// then `aad2`.
    func seal(
        nonce: UnsafeRawBufferPointer, aad1: UnsafeRawBufferPointer, aad2: UnsafeRawBufferPointer, plaintext: UnsafeRawBufferPointer,
        ciphertext: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawBufferPointer
    ) {
        let sealed = contexts.withLock { contexts -> Bool in
            guard let context = contexts.seal ?? Self.makeContext(key, encrypt: true) else { return false }
            contexts.seal = context
            return aesel_gcm_seal(
                context.pointer, bytes(nonce), bytes(aad1), Int32(aad1.count), bytes(aad2), Int32(aad2.count), bytes(plaintext), Int32(plaintext.count),
                ciphertext.baseAddress?.assumingMemoryBound(to: UInt8.self), tag.baseAddress?.assumingMemoryBound(to: UInt8.self)) == 1
        }
        // Fails only without memory or with a broken libcrypto: nothing unsealed may be sent instead.
        precondition(sealed, "AES-256-GCM sealing failed")
    }

    /// Opens `ciphertext` into `plaintext` (the same size); false when the tag does not prove it and the
    /// associated data authentic, and then `plaintext` holds nothing to use.
    func open(
        nonce: UnsafeRawBufferPointer, aad1: UnsafeRawBufferPointer, aad2: UnsafeRawBufferPointer, ciphertext: UnsafeRawBufferPointer,
        tag: UnsafeRawBufferPointer, plaintext: UnsafeMutableRawBufferPointer
    ) -> Bool {
        contexts.withLock { contexts -> Bool in
            guard let context = contexts.open ?? Self.makeContext(key, encrypt: false) else { return false }
            contexts.open = context
            return aesel_gcm_open(
                context.pointer, bytes(nonce), bytes(aad1), Int32(aad1.count), bytes(aad2), Int32(aad2.count), bytes(ciphertext), Int32(ciphertext.count),
                bytes(tag), plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self)) == 1
        }
    }

    private static func makeContext(_ key: [UInt8], encrypt: Bool) -> Context? {
        key.withUnsafeBufferPointer { aesel_gcm_new($0.baseAddress, encrypt ? 1 : 0) }.map(Context.init)
    }

    private func bytes(_ buffer: UnsafeRawBufferPointer) -> UnsafePointer<UInt8>? {
        buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
    }
}
