public import AeselModel
public import AeselStream
import AeselWire
import CZeroMQ
import Foundation
public import NIOCore
import Synchronization

/// The messages a publisher sends on this topic keep subscribers sure the stream is alive. Scene keys
/// never start with a NUL byte, so it cannot collide with a scene.
let heartbeatTopic = "\u{0}heartbeat"

/// CLyman's side of a ZeroMQ change stream: a PUB socket, bound, whose topic is the scene key.
///
/// `publish` runs on the UDP event loop and on HTTP handlers, so the socket is used under a lock; a send
/// never blocks: past the high-water mark the event is dropped and counted. A heartbeat every 100 ms lets
/// the subscriber tell a live stream from a silent one, and ends the slow-joiner problem: a subscriber
/// reports ready only once a heartbeat came through, so no event published after that is lost.
public final class ZeroMQPublisher: ChangeStream {
    /// The socket and whether the heartbeat should go on, shared with the heartbeat thread.
    private final class State: Sendable {
        let socket: Mutex<ZeroMQSocket>
        let running = Atomic<Bool>(true)
        let dropped = Atomic<Int>(0)

        init(_ socket: ZeroMQSocket) {
            self.socket = Mutex(socket)
        }
    }

    private let state: State

    public init(endpoint: ZeroMQEndpoint, highWaterMark: Int32 = 100_000) throws {
        let socket = try ZeroMQSocket(type: ZMQ_PUB)
        try socket.set(ZMQ_SNDHWM, highWaterMark)
        try socket.bind(endpoint.address)
        let state = State(socket)
        self.state = state
        Thread {
            let topic = Array(heartbeatTopic.utf8)
            while state.running.load(ordering: .relaxed) {
                state.socket.withLock { socket in
                    _ = topic.withUnsafeBytes { topic in [UInt8]().withUnsafeBytes { socket.sendTwoFrames(topic, $0) } }
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
        }.start()
    }

    public func publish(_ event: ChangeEvent) {
        var body = ByteBufferAllocator().buffer(capacity: 512)
        ChangeEventCodec.encode(event, into: &body)
        let sent = state.socket.withLock { socket in
            Array(event.sceneKey.utf8).withUnsafeBytes { topic in
                body.withUnsafeReadableBytes { socket.sendTwoFrames(topic, $0) }
            }
        }
        if !sent { state.dropped.add(1, ordering: .relaxed) }
    }

    /// Events dropped because the stream was full.
    public var droppedCount: Int { state.dropped.load(ordering: .relaxed) }

    /// A PUB socket cannot see its subscribers; the subscriber side judges the stream's health.
    public var isHealthy: Bool { true }

    /// Stops the heartbeat; the socket closes when the publisher is released.
    public func stop() {
        state.running.store(false, ordering: .relaxed)
    }

    deinit {
        state.running.store(false, ordering: .relaxed)
    }
}

/// CrazyIvan's side: a SUB socket, connected, on a thread of its own. Each event is decoded and handed to
/// the subscriber on `eventLoop`, where the fan-out's socket lives, in the order received.
public final class ZeroMQSubscriber: Sendable {
    private let endpoint: ZeroMQEndpoint
    private let subscriber: any ChangeStreamSubscriber
    private let eventLoop: any EventLoop
    private let running = Atomic<Bool>(true)
    private let lastHeartbeat = Atomic<UInt64>(0)
    private let malformed = Atomic<Int>(0)

    /// How long without a heartbeat before the stream counts as down.
    public static let heartbeatTimeout: UInt64 = 1_000_000_000

    public init(endpoint: ZeroMQEndpoint, subscriber: any ChangeStreamSubscriber, eventLoop: any EventLoop) throws {
        self.endpoint = endpoint
        self.subscriber = subscriber
        self.eventLoop = eventLoop
        let socket = try ZeroMQSocket(type: ZMQ_SUB)
        try socket.set(ZMQ_RCVHWM, 100_000)
        try socket.subscribe("")
        try socket.connect(endpoint.address)
        let thread = Thread { [self] in receive(on: socket) }
        thread.start()
    }

    /// True while heartbeats arrive.
    public var isHealthy: Bool {
        let last = lastHeartbeat.load(ordering: .relaxed)
        return last != 0 && NIODeadline.now().uptimeNanoseconds - last < Self.heartbeatTimeout
    }

    /// Waits until the first heartbeat came through: from then on no published event is lost.
    public func ready(timeout: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + timeout
        while lastHeartbeat.load(ordering: .relaxed) == 0 {
            guard ContinuousClock.now < deadline else { throw ZeroMQStreamTimeout(endpoint: endpoint) }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    public func stop() {
        running.store(false, ordering: .relaxed)
    }

    private func receive(on socket: ZeroMQSocket) {
        var topic = [UInt8](repeating: 0, count: 256)
        var body = [UInt8](repeating: 0, count: 65_536)
        var poll = zmq_pollitem_t(socket: socket.raw, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        while running.load(ordering: .relaxed) {
            // Poll with a timeout so a stop is noticed within 100 ms.
            guard zmq_poll(&poll, 1, 100) > 0 else { continue }
            while true {
                let topicLength = zmq_recv(socket.raw, &topic, topic.count, ZMQ_DONTWAIT)
                guard topicLength >= 0 else { break }
                let bodyLength = zmq_recv(socket.raw, &body, body.count, ZMQ_DONTWAIT)
                guard bodyLength >= 0 else { break }
                if topicLength > 0, topic[0] == 0 {
                    lastHeartbeat.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
                    continue
                }
                guard bodyLength <= body.count, let event = try? ChangeEventCodec.decode(ByteBuffer(bytes: body[0..<Int(bodyLength)])) else {
                    malformed.add(1, ordering: .relaxed)
                    continue
                }
                eventLoop.execute { [subscriber] in subscriber.deliver(event) }
            }
        }
    }
}

public struct ZeroMQStreamTimeout: Error, CustomStringConvertible {
    public let endpoint: ZeroMQEndpoint
    public var description: String { "no heartbeat from the change stream at \(endpoint) within the timeout" }
}

