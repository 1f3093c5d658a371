public import NIOCore

/// A datagram a pair's CrazyIvan sends to the binary-format devices of a scene Adrestia just moved to
/// it: "this scene has a new endpoint; ask the gateway". It names only the scene, so a forged one can do
/// no more than make a device ask the gateway early; the endpoint itself always comes from the gateway.
///
/// The layout is the binary event header (docs/protocol.md) with message type 200, sequence and
/// timestamp 0, the scene key, and empty object and device keys.
public enum SceneMovedNotice {
    public static let messageType: UInt8 = 200

    public static func encode(sceneKey: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        let key = sceneKey.utf8.prefix(255)
        var buffer = allocator.buffer(capacity: 23 + key.count)
        buffer.writeMultipleIntegers(BinaryEventFormat.magic, BinaryEventFormat.version, messageType, UInt8(0))
        buffer.writeMultipleIntegers(UInt64(0), UInt64(0))
        buffer.writeInteger(UInt8(key.count))
        buffer.writeBytes(key)
        buffer.writeMultipleIntegers(UInt8(0), UInt8(0))
        return buffer
    }

    /// The scene a datagram announces as moved, or nil when it is not such a notice.
    public static func sceneKey(in datagram: ByteBuffer) -> String? {
        var buffer = datagram
        guard let (magic, version, type, _) = buffer.readMultipleIntegers(as: (UInt8, UInt8, UInt8, UInt8).self),
            magic == BinaryEventFormat.magic, version == BinaryEventFormat.version, type == messageType,
            buffer.readInteger(as: UInt64.self) != nil, buffer.readInteger(as: UInt64.self) != nil,
            let length = buffer.readInteger(as: UInt8.self), length > 0,
            let key = buffer.readString(length: Int(length))
        else { return nil }
        return key
    }
}
