import AeselModel
import AeselSealing
import Crypto
import CryptoExtras
import Foundation
import NIOCore
import Testing

@Suite struct ReplayWindowTests {
    @Test func acceptsEachCounterOnceAndInAnyOrderWithinTheWindow() {
        var window = ReplayWindow()
        for counter: UInt64 in [5, 3, 4, 1, 2, 10, 7] {
            #expect(window.check(counter) == .fresh)
            window.accept(counter)
            #expect(window.check(counter) == .replayed)
        }
        #expect(window.check(6) == .fresh)
        #expect(window.check(0) == .tooOld)
    }

    @Test func forgetsWhatTheWindowLeftBehind() {
        var window = ReplayWindow()
        window.accept(100)
        window.accept(100 + ReplayWindow.width - 1)
        #expect(window.check(100) == .replayed)
        #expect(window.check(101) == .fresh)
        window.accept(100 + ReplayWindow.width)
        #expect(window.check(100) == .tooOld)
        // A jump past the whole window clears it: counters just below the new newest are unseen.
        window.accept(10_000)
        #expect(window.check(9_999) == .fresh)
        #expect(window.check(100 + ReplayWindow.width) == .tooOld)
        #expect(window.check(10_000) == .replayed)
    }
}

@Suite struct SessionCipherTests {
    let key = EventSessionKey.generate()
    let allocator = ByteBufferAllocator()

    func sealed(_ text: String, salt: UInt32 = 7, counter: UInt64 = 1, scene: String = "scene", device: String = "device") -> ByteBuffer {
        SessionCipher(key, direction: .toPair, sceneKey: scene, deviceKey: device)
            .seal(ByteBuffer(string: text), salt: salt, counter: counter, allocator: allocator)
    }

    @Test func opensWhatItSealedAndNothingElse() throws {
        let datagram = sealed(#"{"msg_type":1}"#)
        #expect(datagram.readableBytes == 14 + SealedDatagram.overhead)
        let header = try #require(SealedDatagram.header(of: datagram))
        #expect(header == SealedDatagram.Header(direction: .toPair, keyID: key.id, salt: 7, counter: 1))
        let opener = SessionCipher(key, direction: .toPair, sceneKey: "scene", deviceKey: "device")
        #expect(opener.open(datagram, header: header, allocator: allocator).map { String(buffer: $0) } == #"{"msg_type":1}"#)

        // Bound to its scene, device, direction and key.
        for other in [
            SessionCipher(key, direction: .toPair, sceneKey: "other", deviceKey: "device"),
            SessionCipher(key, direction: .toPair, sceneKey: "scene", deviceKey: "other"),
            SessionCipher(EventSessionKey(id: key.id, secret: .init(repeating: 1, count: 32)), direction: .toPair, sceneKey: "scene", deviceKey: "device"),
        ] {
            #expect(other.open(datagram, header: header, allocator: allocator) == nil)
        }
        let toDevice = SessionCipher(key, direction: .toDevice, sceneKey: "scene", deviceKey: "device")
        #expect(toDevice.open(datagram, header: header, allocator: allocator) == nil)
    }

    /// docs/protocol.md's recipe, with swift-crypto as the independent implementation: the key from
    /// HKDF-SHA256, the nonce the header's last 12 bytes, the associated data the header then each key
    /// with its length byte. Both ways: what a device in another language seals, and what it opens.
    @Test func matchesTheDocumentedFormatBothWays() throws {
        let derived = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: key.secret), salt: Array("aesel sealed events v1".utf8), info: Array("to pair".utf8),
            outputByteCount: 32)
        let text = #"{"msg_type":1,"key":"a"}"#
        let datagram = Array(sealed(text, salt: 0xAABB_CCDD, counter: 42).readableBytesView)
        let header = Array(datagram[0..<SealedDatagram.headerSize])
        let associatedData = header + [5] + Array("scene".utf8) + [6] + Array("device".utf8)
        let box = try AES.GCM.SealedBox(
            nonce: AES.GCM.Nonce(data: header[12...]), ciphertext: datagram[SealedDatagram.headerSize..<(datagram.count - 16)],
            tag: datagram[(datagram.count - 16)...])
        #expect(String(decoding: try AES.GCM.open(box, using: derived, authenticating: associatedData), as: UTF8.self) == text)

        let theirs = try AES.GCM.seal(Array(text.utf8), using: derived, nonce: AES.GCM.Nonce(data: header[12...]), authenticating: associatedData)
        let their = ByteBuffer(bytes: header + theirs.ciphertext + theirs.tag)
        let opener = SessionCipher(key, direction: .toPair, sceneKey: "scene", deviceKey: "device")
        let parsed = try #require(SealedDatagram.header(of: their))
        #expect(opener.open(their, header: parsed, allocator: allocator).map { String(buffer: $0) } == text)
    }

    @Test func refusesEveryFlippedBit() throws {
        let datagram = sealed("hello")
        let opener = SessionCipher(key, direction: .toPair, sceneKey: "scene", deviceKey: "device")
        for index in 0..<datagram.readableBytes {
            for bit in 0..<8 {
                var tampered = datagram
                tampered.setInteger(datagram.getInteger(at: index, as: UInt8.self)! ^ (1 << bit), at: index)
                if let header = SealedDatagram.header(of: tampered) {
                    #expect(opener.open(tampered, header: header, allocator: allocator) == nil, "byte \(index) bit \(bit)")
                }
            }
        }
        var cut = datagram
        cut.moveWriterIndex(to: SealedDatagram.overhead - 1)
        #expect(SealedDatagram.header(of: cut) == nil)
    }

    @Test func anOpenerDropsReplaysAndFarBehindCounters() throws {
        let opener = SessionOpener(SessionCipher(key, direction: .toPair, sceneKey: "scene", deviceKey: "device"))
        func open(_ datagram: ByteBuffer) -> String {
            switch opener.open(datagram, header: SealedDatagram.header(of: datagram)!, allocator: allocator) {
            case .opened(let plaintext): String(buffer: plaintext)
            case .replayed: "replayed"
            case .tooOld: "too old"
            case .notAuthentic: "not authentic"
            }
        }
        let first = sealed("a", counter: 5_000)
        #expect(open(first) == "a")
        #expect(open(first) == "replayed")
        #expect(open(sealed("b", counter: 4_999)) == "b")
        #expect(open(sealed("c", counter: 5_000 - ReplayWindow.width)) == "too old")
        // A forged datagram with a far-ahead counter must not move the window.
        var forged = sealed("d", counter: 1_000_000)
        forged.setInteger(UInt8(0), at: forged.writerIndex - 1)
        #expect(open(forged) == "not authentic")
        #expect(open(sealed("e", counter: 4_998)) == "e")
    }

    @Test func aSealerNeverRepeatsANonce() {
        let sealer = SessionSealer(SessionCipher(key, direction: .toDevice, sceneKey: "scene", deviceKey: "device"))
        let counters = (0..<1_000).map { _ in SealedDatagram.header(of: sealer.seal(ByteBuffer(string: "x"), allocator: allocator))!.counter }
        #expect(Set(counters).count == counters.count)
        #expect(counters == counters.sorted())
        let restarted = SessionSealer(sealer.cipher)
        #expect(restarted.takeCounter() > counters.last!)
    }
}

@Suite struct OriginalEventCipherTests {
    // The key and IV are the first 32 and 16 characters of the configured strings, as ASCII.
    let cipher = try! OriginalEventCipher(.init(key: "0123456789abcdef0123456789abcdef-ignored", iv: "fedcba9876543210-ignored"))

    @Test func matchesOpenSSLAndBreaksLinesAsPocoDoes() throws {
        // `openssl enc -aes-256-cbc -K <hex of the 32 characters> -iv <hex of the 16>`, then base64.
        let short = cipher.encrypt(ByteBuffer(string: #"{"msg_type":1,"key":"k","scene":"s"}"#), allocator: .init())
        #expect(String(buffer: short) == "CRLGQEFIXt5xKsE7U1WYNcdaUCmc65+NFDHZ7htjMsXkHYv3wWAUfyGpKq7f8TUB")
        let long = cipher.encrypt(ByteBuffer(string: String(repeating: "A", count: 100)), allocator: .init())
        let expected = "jTMoouM8cUuPMw8cD14sqb388GdE3lTa2cKU0CdlDhBfHW59SIPP3QS1nodiAS0vBWRJJljq+J8ULZWDolpjQRJElfP7gw+ZGE07Z4aB3FaxrX2noqVZgOLLFHxAGYZzVBsf6OMxP3p46mtGWkff8w=="
        // A CRLF after every 72 characters, none at the end.
        #expect(String(buffer: long) == [expected.prefix(72), expected.dropFirst(72).prefix(72), expected.dropFirst(144)].joined(separator: "\r\n"))
        #expect(cipher.decrypt(long, allocator: .init()).map { String(buffer: $0) } == String(repeating: "A", count: 100))
    }

    @Test func matchesSwiftCryptoBothWays() throws {
        // swift-crypto's CBC as an independent implementation, over lengths around the block size.
        let key = SymmetricKey(data: Array("0123456789abcdef0123456789abcdef".utf8))
        let iv = try AES._CBC.IV(ivBytes: Array("fedcba9876543210".utf8))
        for length in [0, 1, 15, 16, 17, 31, 32, 33, 200] {
            let plaintext = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37) }
            let ours = try #require(Data(base64Encoded: String(buffer: cipher.encrypt(ByteBuffer(bytes: plaintext), allocator: .init())), options: .ignoreUnknownCharacters))
            #expect(try AES._CBC.decrypt(ours, using: key, iv: iv) == Data(plaintext))
            let theirs = try AES._CBC.encrypt(plaintext, using: key, iv: iv)
            #expect(cipher.decrypt(ByteBuffer(string: theirs.base64EncodedString()), allocator: .init()) == ByteBuffer(bytes: plaintext))
        }
    }

    @Test func refusesWhatIsNotItsCiphertext() throws {
        for text in ["", "not base64!", "AAAA", #"{"msg_type":1}"#] {
            #expect(cipher.decrypt(ByteBuffer(string: text), allocator: .init()) == nil)
        }
        #expect(throws: OriginalEventCipher.SecretError.self) { try OriginalEventCipher(.init(key: "short", iv: "fedcba9876543210")) }
    }
}
