public import AeselModel
import CLibCrypto
import Foundation
public import NIOCore
import Synchronization

/// One direction of one device's session: seals or opens its datagrams. The key is derived from the
/// session secret per direction (HKDF-SHA256), so the two directions never share a nonce space; the scene
/// and device keys are bound into every datagram's associated data, so a datagram sealed for one device
/// or scene cannot be played into another.
public final class SessionCipher: Sendable {
    public let keyID: UInt64
    public let direction: SealedDatagram.Direction
    public let sceneKey: String
    public let deviceKey: String
    private let key: AESGCMKey
    /// The associated data after the header: each key with a one-byte length.
    private let binding: [UInt8]

    public init(_ sessionKey: EventSessionKey, direction: SealedDatagram.Direction, sceneKey: String, deviceKey: String) {
        keyID = sessionKey.id
        self.direction = direction
        self.sceneKey = sceneKey
        self.deviceKey = deviceKey
        key = AESGCMKey(Self.deriveKey(sessionKey.secret, direction: direction))
        // Keys are at most 255 bytes (EventCodec.isValidKey), so each length fits its byte.
        binding = [UInt8(truncatingIfNeeded: sceneKey.utf8.count)] + Array(sceneKey.utf8) + [UInt8(truncatingIfNeeded: deviceKey.utf8.count)]
            + Array(deviceKey.utf8)
    }

    /// Writes the sealed form of `plaintext` to the start of `output`, which must hold
    /// `plaintext.count + SealedDatagram.overhead` bytes; returns the number of bytes written.
    public func seal(_ plaintext: UnsafeRawBufferPointer, salt: UInt32, counter: UInt64, into output: UnsafeMutableRawBufferPointer) -> Int {
        let header = SealedDatagram.Header(direction: direction, keyID: keyID, salt: salt, counter: counter)
        SealedDatagram.write(header, to: output)
        let ciphertextEnd = SealedDatagram.headerSize + plaintext.count
        binding.withUnsafeBytes { binding in
            key.seal(
                nonce: UnsafeRawBufferPointer(rebasing: output[Self.nonceRange]),
                aad1: UnsafeRawBufferPointer(rebasing: output[0..<SealedDatagram.headerSize]), aad2: binding, plaintext: plaintext,
                ciphertext: UnsafeMutableRawBufferPointer(rebasing: output[SealedDatagram.headerSize..<ciphertextEnd]),
                tag: UnsafeMutableRawBufferPointer(rebasing: output[ciphertextEnd..<(ciphertextEnd + SealedDatagram.tagSize)]))
        }
        return ciphertextEnd + SealedDatagram.tagSize
    }

    /// The sealed form of `plaintext` in a buffer of its own.
    public func seal(_ plaintext: ByteBuffer, salt: UInt32, counter: UInt64, allocator: ByteBufferAllocator) -> ByteBuffer {
        var sealed = allocator.buffer(capacity: plaintext.readableBytes + SealedDatagram.overhead)
        _ = plaintext.withUnsafeReadableBytes { plaintext in
            sealed.writeWithUnsafeMutableBytes(minimumWritableBytes: plaintext.count + SealedDatagram.overhead) { output in
                seal(plaintext, salt: salt, counter: counter, into: output)
            }
        }
        return sealed
    }

    /// The plaintext of a datagram whose `header` names this cipher's key, or nil when it is not
    /// authentic: tampered with, sealed with another key, for another scene or device, or the other way.
    public func open(_ datagram: ByteBuffer, header: SealedDatagram.Header, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard header.direction == direction, header.keyID == keyID, datagram.readableBytes >= SealedDatagram.overhead else { return nil }
        var plaintext = allocator.buffer(capacity: datagram.readableBytes - SealedDatagram.overhead)
        var authentic = false
        datagram.withUnsafeReadableBytes { bytes in
            let ciphertextEnd = bytes.count - SealedDatagram.tagSize
            plaintext.writeWithUnsafeMutableBytes(minimumWritableBytes: ciphertextEnd - SealedDatagram.headerSize) { output in
                authentic = binding.withUnsafeBytes { binding in
                    key.open(
                        nonce: UnsafeRawBufferPointer(rebasing: bytes[Self.nonceRange]),
                        aad1: UnsafeRawBufferPointer(rebasing: bytes[0..<SealedDatagram.headerSize]), aad2: binding,
                        ciphertext: UnsafeRawBufferPointer(rebasing: bytes[SealedDatagram.headerSize..<ciphertextEnd]),
                        tag: UnsafeRawBufferPointer(rebasing: bytes[ciphertextEnd...]),
                        plaintext: UnsafeMutableRawBufferPointer(rebasing: output[0..<(ciphertextEnd - SealedDatagram.headerSize)]))
                }
                return authentic ? ciphertextEnd - SealedDatagram.headerSize : 0
            }
        }
        return authentic ? plaintext : nil
    }

    /// HKDF-SHA256 of the session secret, one key per direction.
    static func deriveKey(_ secret: [UInt8], direction: SealedDatagram.Direction) -> [UInt8] {
        let salt = Array("aesel sealed events v1".utf8)
        let info = Array((direction == .toPair ? "to pair" : "to device").utf8)
        var key = [UInt8](repeating: 0, count: 32)
        let derived = key.withUnsafeMutableBufferPointer { key in
            aesel_hkdf_sha256(secret, Int32(secret.count), salt, Int32(salt.count), info, Int32(info.count), key.baseAddress, 32)
        }
        // Fails only without memory or with a broken libcrypto.
        precondition(derived == 1, "HKDF-SHA256 failed")
        return key
    }

    /// The nonce: the header's salt and counter.
    private static let nonceRange = 12..<SealedDatagram.headerSize
}

/// A sender's side of one session: the cipher, and the nonces it has not used yet. The counter starts at
/// the wall clock in nanoseconds, so a sender that starts again with the same key (a pair taking a scene
/// over) counts above what it sent before, and the salt is drawn anew, so two senders alive at once never
/// share a nonce. Within a process a session has one sealer (``shared(_:direction:sceneKey:deviceKey:)``):
/// two would count apart, and the receiver's window would drop the one behind.
public final class SessionSealer: Sendable {
    public let cipher: SessionCipher
    public let salt: UInt32
    private let nextCounter: Atomic<UInt64>

    public init(_ cipher: SessionCipher) {
        self.cipher = cipher
        salt = UInt32.random(in: .min ... .max)
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        nextCounter = Atomic(UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec))
    }

    /// A counter no other datagram of this sealer used; any thread may take one.
    public func takeCounter() -> UInt64 {
        nextCounter.add(1, ordering: .relaxed).newValue
    }

    public func seal(_ plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int {
        cipher.seal(plaintext, salt: salt, counter: takeCounter(), into: output)
    }

    public func seal(_ plaintext: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        cipher.seal(plaintext, salt: salt, counter: takeCounter(), allocator: allocator)
    }

    private struct Registry {
        struct Entry {
            weak var sealer: SessionSealer?
        }
        var entries: [UInt64: Entry] = [:]
        /// When the table next sheds the entries whose sealers are gone.
        var sweepAt = 1024
    }

    private static let registry = Mutex(Registry())

    /// This process's sealer of the session, made if it has none: every cache entry, reload and notice
    /// for a device seals with the same counter.
    public static func shared(_ key: EventSessionKey, direction: SealedDatagram.Direction, sceneKey: String, deviceKey: String) -> SessionSealer {
        registry.withLock { registry in
            if let sealer = registry.entries[key.id]?.sealer, sealer.cipher.direction == direction, sealer.cipher.sceneKey == sceneKey,
                sealer.cipher.deviceKey == deviceKey
            {
                return sealer
            }
            let sealer = SessionSealer(SessionCipher(key, direction: direction, sceneKey: sceneKey, deviceKey: deviceKey))
            registry.entries[key.id] = Registry.Entry(sealer: sealer)
            if registry.entries.count >= registry.sweepAt {
                registry.entries = registry.entries.filter { $0.value.sealer != nil }
                registry.sweepAt = max(1024, registry.entries.count * 2)
            }
            return sealer
        }
    }
}

/// A receiver's side of one session: the cipher and the replay window of the counters it accepted.
public final class SessionOpener: Sendable {
    public enum Outcome {
        case opened(ByteBuffer)
        case replayed
        /// Further behind the newest counter than the replay window reaches.
        case tooOld
        /// Tampered with, or sealed with another key, scene or device.
        case notAuthentic
    }

    public let cipher: SessionCipher
    private let window = Mutex(ReplayWindow())

    public init(_ cipher: SessionCipher) {
        self.cipher = cipher
    }

    /// Checks the counter before the tag (a replay costs no decryption) and records it only once the
    /// datagram proved authentic, so forged datagrams cannot move the window.
    public func open(_ datagram: ByteBuffer, header: SealedDatagram.Header, allocator: ByteBufferAllocator) -> Outcome {
        switch window.withLock({ $0.check(header.counter) }) {
        case .replayed: return .replayed
        case .tooOld: return .tooOld
        case .fresh: break
        }
        guard let plaintext = cipher.open(datagram, header: header, allocator: allocator) else { return .notAuthentic }
        // Checked again under the lock: another thread may have accepted the same counter meanwhile.
        let verdict = window.withLock { window -> ReplayWindow.Verdict in
            let verdict = window.check(header.counter)
            if verdict == .fresh { window.accept(header.counter) }
            return verdict
        }
        switch verdict {
        case .fresh: return .opened(plaintext)
        case .replayed: return .replayed
        case .tooOld: return .tooOld
        }
    }
}
