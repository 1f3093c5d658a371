public import AeselModel
import Foundation
public import NIOCore

/// A device's own side of its session, from its registration answer: it seals what it sends to the pair
/// and opens what the pair sends it. What `AeselClient`, Adrestia's probes and the tests' devices use.
public struct DeviceSession: Sendable {
    public let sealer: SessionSealer
    public let opener: SessionOpener

    public init(_ key: EventSessionKey, sceneKey: String, deviceKey: String) {
        sealer = SessionSealer(SessionCipher(key, direction: .toPair, sceneKey: sceneKey, deviceKey: deviceKey))
        opener = SessionOpener(SessionCipher(key, direction: .toDevice, sceneKey: sceneKey, deviceKey: deviceKey))
    }

    /// From a registration answer's `session_key_id` and `session_key` (base64); nil when they are
    /// missing (the pair runs plaintext) or malformed.
    public init?(keyID: UInt64?, secret: String?, sceneKey: String, deviceKey: String) {
        guard let keyID, let secret, let bytes = Data(base64Encoded: secret), bytes.count == EventSessionKey.secretSize,
            EventSessionKey.idRange.contains(keyID)
        else { return nil }
        self.init(EventSessionKey(id: keyID, secret: [UInt8](bytes)), sceneKey: sceneKey, deviceKey: deviceKey)
    }

    public var keyID: UInt64 { sealer.cipher.keyID }

    public func seal(_ plaintext: ByteBuffer, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        sealer.seal(plaintext, allocator: allocator)
    }

    /// The plaintext of a datagram from the pair, or nil (with why) when it is not one of this session's.
    public func open(_ datagram: ByteBuffer, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> SessionOpener.Outcome {
        guard let header = SealedDatagram.header(of: datagram), header.keyID == keyID else { return .notAuthentic }
        return opener.open(datagram, header: header, allocator: allocator)
    }
}
