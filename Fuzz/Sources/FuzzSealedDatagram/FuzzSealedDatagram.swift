// What an event meets before it is decoded when events are secured (docs/protocol.md, "Sealed events" and
// "AES-256-CBC"): the sealed header's parser, a session's opener (replay window, then AES-256-GCM), and the
// original's CBC decryption. The first byte chooses what the rest is:
//
// - 0: a datagram from anyone, opened as CLyman would with a session whose key id is the header's (so the
//   fuzzer reaches the cipher): it opens only if it is exactly what sealing its plaintext under its header
//   gives, and then only once (the second time is a replay).
// - 1: a plaintext event a device seals: it opens to itself, and with any one bit flipped it does not.
// - 2: a datagram for the CBC mode: what decrypts encrypts to something that decrypts to the same.
//
// Everywhere: nothing traps, and the header parser gives the same answer whatever the reader index.
import AeselModel
import AeselSealing
import FuzzSupport
import NIOCore

let secret = [UInt8](0..<32)
let sceneKey = "7f3c2a10-5b6e-4c1d-9a8b-0123456789ab"
let deviceKey = "phone-1"
let original = try! OriginalEventCipher(.init(key: "0123456789abcdef0123456789abcdef", iv: "fedcba9876543210"))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSealedDatagram(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size > 0, let data else { return 0 }
    let rest = ByteBuffer(bytes: UnsafeRawBufferPointer(start: data + 1, count: size - 1))
    let header = SealedDatagram.header(of: rest)
    let shifted = Fuzz.shifted(data + 1, size - 1)
    Fuzz.check(header == SealedDatagram.header(of: shifted), "header(of:) depends on the reader index")
    Fuzz.check(SealedDatagram.isSealed(rest) == SealedDatagram.isSealed(shifted), "isSealed depends on the reader index")
    switch data[0] % 3 {
    case 0: openAnything(rest, header: header)
    case 1: sealAndTamper(rest, flip: size > 2 ? Int(data[1]) | Int(data[2]) << 8 : 0)
    default: decryptOriginal(rest)
    }
    return 0
}

func openAnything(_ datagram: ByteBuffer, header: SealedDatagram.Header?) {
    guard let header, EventSessionKey.idRange.contains(header.keyID) else { return }
    let key = EventSessionKey(id: header.keyID, secret: secret)
    let opener = SessionOpener(SessionCipher(key, direction: .toPair, sceneKey: sceneKey, deviceKey: deviceKey))
    guard case .opened(let plaintext) = opener.open(datagram, header: header, allocator: ByteBufferAllocator()) else { return }
    let resealed = SessionCipher(key, direction: .toPair, sceneKey: sceneKey, deviceKey: deviceKey)
        .seal(plaintext, salt: header.salt, counter: header.counter, allocator: ByteBufferAllocator())
    Fuzz.check(resealed == datagram, "a datagram opened that sealing its plaintext does not give")
    guard case .replayed = opener.open(datagram, header: header, allocator: ByteBufferAllocator()) else {
        Fuzz.check(false, "a datagram opened twice")
        return
    }
}

func sealAndTamper(_ plaintext: ByteBuffer, flip: Int) {
    let key = EventSessionKey(id: 42, secret: secret)
    let device = DeviceSession(key, sceneKey: sceneKey, deviceKey: deviceKey)
    let sealed = device.seal(plaintext)
    Fuzz.check(sealed.readableBytes == plaintext.readableBytes + SealedDatagram.overhead, "sealing changed the size by more than its overhead")
    func open(_ datagram: ByteBuffer) -> SessionOpener.Outcome {
        let pair = SessionOpener(SessionCipher(key, direction: .toPair, sceneKey: sceneKey, deviceKey: deviceKey))
        guard let header = SealedDatagram.header(of: datagram) else { return .notAuthentic }
        return pair.open(datagram, header: header, allocator: ByteBufferAllocator())
    }
    guard case .opened(let opened) = open(sealed), opened == plaintext else {
        Fuzz.check(false, "a sealed datagram did not open to its plaintext")
        return
    }
    var tampered = sealed
    let bit = flip % (tampered.readableBytes * 8)
    tampered.setInteger(tampered.getInteger(at: bit / 8, as: UInt8.self)! ^ (1 << (bit % 8)), at: bit / 8)
    if case .opened = open(tampered) { Fuzz.check(false, "a datagram opened with bit \(bit) flipped") }
    // Neither the device's own direction nor another device may open it.
    let reflected = SessionOpener(SessionCipher(key, direction: .toDevice, sceneKey: sceneKey, deviceKey: deviceKey))
    let other = SessionOpener(SessionCipher(key, direction: .toPair, sceneKey: sceneKey, deviceKey: "phone-2"))
    let header = SealedDatagram.header(of: sealed)!
    for opener in [reflected, other] {
        if case .opened = opener.open(sealed, header: header, allocator: ByteBufferAllocator()) {
            Fuzz.check(false, "a datagram opened for another direction or device")
        }
    }
}

func decryptOriginal(_ datagram: ByteBuffer) {
    guard let plaintext = original.decrypt(datagram, allocator: ByteBufferAllocator()) else { return }
    let again = original.encrypt(plaintext, allocator: ByteBufferAllocator())
    Fuzz.check(original.decrypt(again, allocator: ByteBufferAllocator()) == plaintext, "CBC: encrypting what decrypted does not decrypt to it")
}
