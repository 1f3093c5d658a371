public import NIOCore

/// What an event does. The values are the original's `msg_type` codes (reference 1.1).
public enum EventKind: Int, Sendable, Hashable {
    case objectUpdate = 1
    case propertyUpdate = 9
}

/// One object or property update travelling the event path: decoded once by CLyman, handed over the
/// change stream, fanned out by CrazyIvan. `objectKey` is the property's key for a property update.
public struct ObjectEvent: Sendable, Hashable {
    public var kind: EventKind
    public var sceneKey: String
    public var objectKey: String
    public var transform: Transform
    /// A property update's 1 to 4 values.
    public var values: [Double]
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
        transform: Transform = .identity,
        values: [Double] = [],
        sequence: UInt64 = 0,
        timestamp: UInt64 = 0,
        senderDeviceKey: String = "",
        source: SocketAddress? = nil
    ) {
        self.kind = kind
        self.sceneKey = sceneKey
        self.objectKey = objectKey
        self.transform = transform
        self.values = values
        self.sequence = sequence
        self.timestamp = timestamp
        self.senderDeviceKey = senderDeviceKey
        self.source = source
    }
}

/// An event emitted by an HTTP transaction (reference 2.4): the JSON devices receive, made once.
public struct TransactionEvent: Sendable, Hashable {
    public var sceneKey: String
    public var messageType: Int
    public var json: ByteBuffer

    public init(sceneKey: String, messageType: Int, json: ByteBuffer) {
        self.sceneKey = sceneKey
        self.messageType = messageType
        self.json = json
    }
}

/// What travels the change stream: a UDP update, or the event of an HTTP transaction.
public enum ChangeEvent: Sendable, Hashable {
    case update(ObjectEvent)
    case transaction(TransactionEvent)

    public var sceneKey: String {
        switch self {
        case .update(let event): event.sceneKey
        case .transaction(let event): event.sceneKey
        }
    }
}
