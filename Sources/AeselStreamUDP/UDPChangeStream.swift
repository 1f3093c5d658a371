public import AeselModel
public import AeselStream
import AeselWire
import Foundation
public import NIOCore
import NIOPosix
import Synchronization

/// `udp://HOST:PORT`: the original's CLyman-to-CrazyIvan datagrams (`scene\njson`, see
/// `UDPStreamFraming`), for deployments that mix Aesel with the original services.
public struct UDPStreamEndpoint: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init?(streamURL: String) {
        guard streamURL.hasPrefix("udp://") else { return nil }
        let rest = streamURL.dropFirst("udp://".count)
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        host = String(rest[..<colon])
        self.port = port
        guard !host.isEmpty else { return nil }
    }

    public var description: String { "udp://\(host):\(port)" }

    func address() throws -> SocketAddress {
        try SocketAddress(ipAddress: host == "localhost" ? "127.0.0.1" : host, port: port)
    }
}

/// The scene key of heartbeats; no scene key starts with NUL, and an original CrazyIvan drops it as an
/// unknown scene.
let heartbeatScene = "\u{0}heartbeat"

/// CLyman's side: each event is one datagram to CrazyIvan's stream port, sent from a UDP channel of its
/// own, which it closes when it stops. A heartbeat (CLyman's UDP endpoint) goes every 100 ms. UDP cannot tell whether anyone
/// listens, so this side always reports healthy; CrazyIvan's heartbeat watch tells.
public final class UDPStreamPublisher: ChangeStream {
    private let channel: any Channel
    private let destination: SocketAddress
    private let heartbeat: RepeatedTask

    public init(endpoint: UDPStreamEndpoint, channel: any Channel, announcement: String) throws {
        self.channel = channel
        let destination = try endpoint.address()
        self.destination = destination
        heartbeat = channel.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(100)) { _ in
            var buffer = channel.allocator.buffer(capacity: 64)
            buffer.writeString(heartbeatScene + "\n" + announcement)
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: destination, data: buffer), promise: nil)
        }
    }

    public func publish(_ event: ChangeEvent) {
        var buffer = channel.allocator.buffer(capacity: 512)
        UDPStreamFraming.encode(event, into: &buffer)
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: destination, data: buffer), promise: nil)
    }

    public var isHealthy: Bool { true }

    /// Datagrams carry no acknowledgement: a lost one cannot be counted here.
    public var droppedCount: Int { 0 }

    public func stop() {
        heartbeat.cancel()
        channel.close(promise: nil)
    }
}

/// CrazyIvan's side: a UDP channel on the fan-out's event loop, so each event is fanned out in the turn
/// that reads it.
public final class UDPStreamReceiver: StreamReceiver {
    private final class State: Sendable {
        let heartbeats: HeartbeatWatch
        let malformed = Atomic<Int>(0)

        init(stream: String) {
            heartbeats = HeartbeatWatch(stream: stream, timeout: .seconds(1))
        }
    }

    private let channel: any Channel
    private let state: State

    public init(endpoint: UDPStreamEndpoint, subscriber: any ChangeStreamSubscriber, eventLoop: any EventLoop) async throws {
        let state = State(stream: endpoint.description)
        self.state = state
        // No SO_REUSEADDR: a second receiver on the port must fail, not take the stream.
        channel = try await DatagramBootstrap(group: eventLoop)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(subscriber: subscriber, state: state))
                }
            }
            .bind(to: try endpoint.address()).get()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let subscriber: any ChangeStreamSubscriber
        let state: State

        init(subscriber: any ChangeStreamSubscriber, state: State) {
            self.subscriber = subscriber
            self.state = state
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let datagram = Self.unwrapInboundIn(data).data
            if datagram.readableBytesView.starts(with: (heartbeatScene + "\n").utf8) {
                let text = datagram.getString(at: datagram.readerIndex + heartbeatScene.utf8.count + 1, length: datagram.readableBytes - heartbeatScene.utf8.count - 1) ?? ""
                state.heartbeats.record(announcement: text)
                return
            }
            guard let event = try? UDPStreamFraming.decode(datagram) else {
                state.malformed.add(1, ordering: .relaxed)
                return
            }
            subscriber.deliver(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // A read error must not close the stream's socket.
        }
    }

    public var isHealthy: Bool { state.heartbeats.isHealthy }

    public var rejectedCount: Int { state.malformed.load(ordering: .relaxed) }

    public var partnerAnnouncement: String { state.heartbeats.lastAnnouncement }

    public func ready(timeout: Duration) async throws {
        try await state.heartbeats.ready(timeout: timeout)
    }

    public func stop() {
        channel.close(promise: nil)
    }
}

