public import NIOCore

/// What an event does. The values are the original's `msg_type` codes (reference 1.1).
public enum EventKind: Int, Sendable, Hashable {
    case objectUpdate = 1
    case propertyUpdate = 9
}

/// The actions a keyframe or action update names (UDP `msg_type` 16, 20, 24 and 28, reference 2.1).
public enum ActionUpdate: Sendable, Hashable {
    /// 16: each keyframe is added to its action, replacing one at the same frame.
    case objectKeyframes([ObjectAction])
    /// 20: each action's description and owner.
    case objectActions([ObjectAction])
    /// 24: as 16, for a property.
    case propertyKeyframes([PropertyAction])
    /// 28: as 20, for a property.
    case propertyActions([PropertyAction])

    /// The record the update is for.
    public var kind: EventKind {
        switch self {
        case .objectKeyframes, .objectActions: .objectUpdate
        case .propertyKeyframes, .propertyActions: .propertyUpdate
        }
    }
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
    /// The sender's counting run: a sender that starts counting again gives a larger epoch, so its new
    /// numbers are not stale against the old ones (docs/protocol.md). 0 means not given.
    public var epoch: UInt32
    /// The sender's clock when it sent the event, in nanoseconds; 0 means not given.
    public var timestamp: UInt64
    /// A keyframe or action update's actions; nil for a transform or values update.
    public var actions: ActionUpdate?
    /// The sending device's key, when the datagram names it (binary format).
    public var senderDeviceKey: String
    /// The datagram's source address, used to recognise the sender among the scene's devices.
    public var source: SocketAddress?
    /// When this process read the event's datagram (`NIODeadline` uptime nanoseconds), for the relay
    /// latency histogram; 0 for an event that came over a stream from another process. When it arrived is
    /// not part of what the event says, so events are equal without it.
    public var receivedAt: UInt64

    public init(
        kind: EventKind = .objectUpdate,
        sceneKey: String,
        objectKey: String,
        transform: Transform = .identity,
        values: [Double] = [],
        sequence: UInt64 = 0,
        epoch: UInt32 = 0,
        timestamp: UInt64 = 0,
        actions: ActionUpdate? = nil,
        senderDeviceKey: String = "",
        source: SocketAddress? = nil,
        receivedAt: UInt64 = 0
    ) {
        self.kind = kind
        self.sceneKey = sceneKey
        self.objectKey = objectKey
        self.transform = transform
        self.values = values
        self.sequence = sequence
        self.epoch = epoch
        self.timestamp = timestamp
        self.actions = actions
        self.senderDeviceKey = senderDeviceKey
        self.source = source
        self.receivedAt = receivedAt
    }

    public static func == (lhs: ObjectEvent, rhs: ObjectEvent) -> Bool {
        lhs.kind == rhs.kind && lhs.sceneKey == rhs.sceneKey && lhs.objectKey == rhs.objectKey && lhs.transform == rhs.transform
            && lhs.values == rhs.values && lhs.sequence == rhs.sequence && lhs.epoch == rhs.epoch && lhs.timestamp == rhs.timestamp
            && lhs.actions == rhs.actions && lhs.senderDeviceKey == rhs.senderDeviceKey && lhs.source == rhs.source
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(sceneKey)
        hasher.combine(objectKey)
        hasher.combine(sequence)
        hasher.combine(timestamp)
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

    /// When this process read the update's datagram; nil for a transaction's event or an update that came
    /// over a stream from another process.
    public var receivedAt: UInt64? {
        if case .update(let event) = self, event.receivedAt != 0 { return event.receivedAt }
        return nil
    }
}
