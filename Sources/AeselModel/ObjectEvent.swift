public import NIOCore

/// What an event does. The values are the original's `msg_type` codes (reference 1.1).
public enum EventKind: Int, Sendable, Hashable {
    case objectUpdate = 1
}

/// One object update travelling the event path: decoded once by CLyman, handed over the change stream,
/// fanned out by CrazyIvan.
public struct ObjectEvent: Sendable, Hashable {
    public var kind: EventKind
    public var sceneKey: String
    public var objectKey: String
    public var transform: Transform
    /// The sender's per-object sequence number; 0 means the sender did not number its events.
    public var sequence: UInt64
    /// The sender's clock when it sent the event, in nanoseconds; 0 means not given.
    public var timestamp: UInt64
    /// The sending device's key, when the datagram names it (binary format).
    public var senderDeviceKey: String
    /// The datagram's source address, used to recognise the sender among the scene's devices.
    public var source: SocketAddress?

    public init(
        kind: EventKind = .objectUpdate,
        sceneKey: String,
        objectKey: String,
        transform: Transform,
        sequence: UInt64 = 0,
        timestamp: UInt64 = 0,
        senderDeviceKey: String = "",
        source: SocketAddress? = nil
    ) {
        self.kind = kind
        self.sceneKey = sceneKey
        self.objectKey = objectKey
        self.transform = transform
        self.sequence = sequence
        self.timestamp = timestamp
        self.senderDeviceKey = senderDeviceKey
        self.source = source
    }
}
