public import AeselModel
public import AeselStream
import AeselWire
import CZeroMQ
import Foundation
import NIOCore
import Synchronization
import NIOConcurrencyHelpers

/// The messages a publisher sends on this topic keep subscribers sure the stream is alive. Scene keys
/// never start with a NUL byte, so it cannot collide with a scene.
let heartbeatTopic = "\u{0}heartbeat"

/// CLyman's side of a ZeroMQ change stream: an XPUB socket, bound, whose topic is the scene key.
///
/// `publish` runs on the UDP event loop and on HTTP handlers, so the socket is used under a lock; a send
/// never blocks: past the high-water mark the event is dropped and counted. A heartbeat every 100 ms lets
/// the subscriber tell a live stream from a silent one, and ends the slow-joiner problem: a subscriber
/// reports ready only once a heartbeat came through, so no event published after that is lost. The
/// heartbeat carries `announcement` (CLyman's UDP endpoint), and the XPUB socket's subscription messages
/// tell whether any CrazyIvan listens.
public final class ZeroMQPublisher: ChangeStream {
    /// The socket and whether the heartbeat should go on, shared with the heartbeat thread.
    private final class State: Sendable {
        let socket: NIOLockedValueBox<ZeroMQSocket>
        let dropped = Atomic<Int>(0)
        /// Topics subscribed, as XPUB reports them: above 0 while a subscriber is connected.
        let subscriptions = Atomic<Int>(0)

        init(_ socket: ZeroMQSocket) {
            self.socket = NIOLockedValueBox(socket)
        }
    }

    private let state: State
    private let heartbeat: StreamThread

    public init(endpoint: ZeroMQEndpoint, announcement: String = "", highWaterMark: Int32 = 100_000) throws {
        let socket = try ZeroMQSocket(type: ZMQ_XPUB)
        try socket.set(ZMQ_SNDHWM, highWaterMark)
        // Past the high-water mark a send then fails (and is counted) instead of vanishing silently.
        try socket.set(ZMQ_XPUB_NODROP, 1)
        try socket.bind(endpoint.address)
        let state = State(socket)
        self.state = state
        heartbeat = StreamThread { thread in
            let topic = Array(heartbeatTopic.utf8)
            let body = Array(announcement.utf8)
            var message = [UInt8](repeating: 0, count: 512)
            while thread.isRunning {
                state.socket.withLockedValue { socket in
                    _ = topic.withUnsafeBytes { topic in body.withUnsafeBytes { socket.sendTwoFrames(topic, $0) } }
                    // Subscription messages: 1 then the topic on subscribe, 0 then the topic on unsubscribe.
                    while zmq_recv(socket.raw, &message, message.count, ZMQ_DONTWAIT) > 0 {
                        state.subscriptions.add(message[0] == 1 ? 1 : -1, ordering: .relaxed)
                    }
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
    }

    public func publish(_ event: ChangeEvent) {
        // With no subscriber PUB would drop it silently: count it instead of pretending.
        guard state.subscriptions.load(ordering: .relaxed) > 0 else {
            state.dropped.add(1, ordering: .relaxed)
            return
        }
        var body = ByteBufferAllocator().buffer(capacity: 512)
        ChangeEventCodec.encode(event, into: &body)
        let sent = state.socket.withLockedValue { socket in
            Array(event.sceneKey.utf8).withUnsafeBytes { topic in
                body.withUnsafeReadableBytes { socket.sendTwoFrames(topic, $0) }
            }
        }
        if !sent { state.dropped.add(1, ordering: .relaxed) }
    }

    /// Events dropped because no subscriber listened or the stream was full.
    public var droppedCount: Int { state.dropped.load(ordering: .relaxed) }

    /// True while at least one subscriber is connected.
    public var isHealthy: Bool { state.subscriptions.load(ordering: .relaxed) > 0 }

    /// Stops the heartbeat; the socket closes when the publisher is released.
    public func stop() {
        heartbeat.stop()
    }
}

/// CrazyIvan's side: a SUB socket, connected, on a thread of its own. Each event is decoded and handed to
/// the subscriber on that thread, in the order received, so an event costs no second thread wake-up;
/// while the fan-out is busy, events wait in libzmq's queue (its high-water mark bounds it).
public final class ZeroMQSubscriber: StreamReceiver {
    private let subscriber: any ChangeStreamSubscriber
    private let heartbeats: HeartbeatWatch
    private let malformed = Atomic<Int>(0)
    private let thread = NIOLockedValueBox<StreamThread?>(nil)

    public init(endpoint: ZeroMQEndpoint, subscriber: any ChangeStreamSubscriber) throws {
        self.subscriber = subscriber
        heartbeats = HeartbeatWatch(stream: endpoint.description, timeout: .seconds(1))
        let socket = try ZeroMQSocket(type: ZMQ_SUB)
        try socket.set(ZMQ_RCVHWM, 100_000)
        try socket.subscribe("")
        try socket.connect(endpoint.address)
        let started = StreamThread { [self] thread in receive(on: socket, while: thread) }
        thread.withLockedValue { $0 = started }
    }

    public var isHealthy: Bool { heartbeats.isHealthy }

    public var rejectedCount: Int { malformed.load(ordering: .relaxed) }

    public var partnerAnnouncement: String { heartbeats.lastAnnouncement }

    public func ready(timeout: Duration) async throws {
        try await heartbeats.ready(timeout: timeout)
    }

    public func stop() {
        thread.withLockedValue { $0 }?.stop()
    }

    private func receive(on socket: ZeroMQSocket, while thread: StreamThread) {
        var topic = [UInt8](repeating: 0, count: 256)
        var body = [UInt8](repeating: 0, count: 65_536)
        var poll = zmq_pollitem_t(socket: socket.raw, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        while thread.isRunning {
            // Poll with a timeout so a stop is noticed within 100 ms.
            guard zmq_poll(&poll, 1, 100) > 0 else { continue }
            while thread.isRunning {
                let topicLength = zmq_recv(socket.raw, &topic, topic.count, ZMQ_DONTWAIT)
                guard topicLength >= 0 else { break }
                let bodyLength = zmq_recv(socket.raw, &body, body.count, ZMQ_DONTWAIT)
                guard bodyLength >= 0 else { break }
                if topicLength > 0, topic[0] == 0 {
                    heartbeats.record(announcement: String(decoding: body[0..<min(Int(bodyLength), body.count)], as: UTF8.self))
                    continue
                }
                guard bodyLength <= body.count, let event = try? ChangeEventCodec.decode(ByteBuffer(bytes: body[0..<Int(bodyLength)])) else {
                    malformed.add(1, ordering: .relaxed)
                    continue
                }
                subscriber.deliver(event)
            }
        }
    }
}

