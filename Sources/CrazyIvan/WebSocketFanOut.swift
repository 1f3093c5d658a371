import AeselModel
import AeselWire
import CoreMetrics
public import NIOCore
import Synchronization

/// CrazyIvan's WebSocket devices and observers, by scene. ``FanOut`` hands it every event it sends, after
/// the UDP copies; it only queues the event's JSON in each connection's ``WebSocketOutbox`` (encoded once),
/// and the connection's own task writes it. So a slow browser never holds the fan-out up: in its outbox the
/// newest update of an object replaces an unsent older one, and a connection that falls further behind than
/// ``WebSocketOutbox/capacity`` is closed. Both are counted.
public final class WebSocketFanOut: Sendable {
    private let scenes = Mutex<[String: [WebSocketOutbox]]>([:])
    /// How many connections are open: read on every event without the lock, so that a pair without
    /// WebSocket connections pays one atomic load.
    private let open = Atomic<Int>(0)
    private let metrics = Metrics()

    struct Metrics: Sendable {
        let connections = Gauge(label: "aesel_websocket_connections")
        let sent = Counter(label: "aesel_websocket_sent_total")
        let replaced = Counter(label: "aesel_websocket_outbox_dropped_total", dimensions: [("reason", "replaced")])
        let tooSlow = Counter(label: "aesel_websocket_outbox_dropped_total", dimensions: [("reason", "too_slow")])
    }

    public init() {}

    /// A connection joined its scene: it receives the scene's next event.
    public func add(_ outbox: WebSocketOutbox) {
        let count = scenes.withLock { scenes in
            scenes[outbox.sceneKey, default: []].append(outbox)
            return open.add(1, ordering: .relaxed).newValue
        }
        metrics.connections.record(count)
    }

    /// A connection ended: its outbox is closed and receives nothing more.
    public func remove(_ outbox: WebSocketOutbox) {
        outbox.close()
        let count = scenes.withLock { scenes in
            guard var outboxes = scenes[outbox.sceneKey], let index = outboxes.firstIndex(where: { $0 === outbox }) else { return open.load(ordering: .relaxed) }
            outboxes.remove(at: index)
            scenes[outbox.sceneKey] = outboxes.isEmpty ? nil : outboxes
            return open.subtract(1, ordering: .relaxed).newValue
        }
        metrics.connections.record(count)
    }

    /// The connections of `sceneKey`: device key, and whether it only watches.
    public func connections(in sceneKey: String) -> [(deviceKey: String, isObserver: Bool)] {
        scenes.withLock { $0[sceneKey] ?? [] }.map { ($0.deviceKey, $0.isObserver) }
    }

    /// How many connections each scene has.
    public var connectionCounts: [String: Int] {
        scenes.withLock { $0.mapValues(\.count) }
    }

    /// Queues `event` for the scene's connections: all of them for a transaction's event, all but its
    /// sender for an update (unless `echo`). On the fan-out's thread; takes no lock across I/O.
    func deliver(_ event: ChangeEvent, echo: Bool, allocator: ByteBufferAllocator) {
        guard open.load(ordering: .relaxed) > 0, let outboxes = scenes.withLock({ $0[event.sceneKey] }) else { return }
        let payload: ByteBuffer
        var sender = ""
        var replacing: WebSocketOutbox.Key?
        switch event {
        case .transaction(let transaction):
            payload = transaction.json
        case .update(let update):
            payload = EventCodec.encode(update, as: .json, allocator: allocator)
            sender = update.senderDeviceKey
            // A pose supersedes the one before it; keyframe and action edits do not.
            if update.actions == nil { replacing = .init(kind: update.kind, objectKey: update.objectKey) }
        }
        var (queued, replaced, tooSlow) = (0, 0, 0)
        for outbox in outboxes where echo || sender.isEmpty || outbox.deviceKey != sender {
            switch outbox.enqueue(payload, replacing: replacing) {
            case .queued: queued += 1
            case .replaced: (queued, replaced) = (queued + 1, replaced + 1)
            case .tooSlow: tooSlow += 1
            case .closed: break
            }
        }
        if replaced > 0 { metrics.replaced.increment(by: replaced) }
        if tooSlow > 0 { metrics.tooSlow.increment(by: tooSlow) }
    }

    /// Counts the messages a connection wrote.
    public func sent(_ count: Int) {
        metrics.sent.increment(by: count)
    }
}

/// What one WebSocket connection has still to send, in order, with at most one update per object: a newer
/// one takes the older one's place at the end of the queue, so that each object's updates stay in order.
public final class WebSocketOutbox: Sendable {
    /// More messages unsent than this, and the connection is closed as too slow.
    public static let capacity = 4096

    public let sceneKey: String
    public let deviceKey: String
    /// An observer receives the scene's events and may send none.
    public let isObserver: Bool
    private let state = Mutex(State())

    struct Key: Hashable {
        var kind: EventKind
        var objectKey: String
    }

    enum Outcome {
        case queued, replaced, tooSlow, closed
    }

    private struct State: ~Copyable {
        /// Nil where a newer update took an entry's place.
        var entries: [ByteBuffer?] = []
        var index: [Key: Int] = [:]
        var count = 0
        var waiter: CheckedContinuation<Void, Never>?
        var closed = false
        var tooSlow = false
    }

    public init(sceneKey: String, deviceKey: String, isObserver: Bool) {
        (self.sceneKey, self.deviceKey, self.isObserver) = (sceneKey, deviceKey, isObserver)
    }

    func enqueue(_ payload: ByteBuffer, replacing key: Key?) -> Outcome {
        let (outcome, waiter) = state.withLock { state -> (Outcome, CheckedContinuation<Void, Never>?) in
            guard !state.closed else { return (.closed, nil) }
            var outcome = Outcome.queued
            if let key, let earlier = state.index[key] {
                state.entries[earlier] = nil
                state.count -= 1
                outcome = .replaced
            }
            guard state.count < Self.capacity else {
                (state.closed, state.tooSlow) = (true, true)
                return (.tooSlow, state.waiter.take())
            }
            if let key { state.index[key] = state.entries.count }
            state.entries.append(payload)
            state.count += 1
            return (outcome, state.waiter.take())
        }
        waiter?.resume()
        return outcome
    }

    /// Waits for messages to send and takes them all, in order; nil once the outbox is closed.
    public func next() async -> [ByteBuffer]? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state in
                    guard !state.closed, state.count == 0 else { return true }
                    state.waiter = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            close()
        }
        return state.withLock { state in
            guard !state.closed else { return nil }
            let messages = state.entries.compactMap { $0 }
            state.entries.removeAll(keepingCapacity: true)
            state.index.removeAll(keepingCapacity: true)
            state.count = 0
            return messages
        }
    }

    /// Whether the outbox was closed because its connection fell too far behind.
    public var closedAsTooSlow: Bool {
        state.withLock { $0.tooSlow }
    }

    /// Ends ``next()``: nothing more is queued.
    public func close() {
        state.withLock { state in
            state.closed = true
            return state.waiter.take()
        }?.resume()
    }
}
