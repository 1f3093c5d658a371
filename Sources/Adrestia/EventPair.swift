import AeselModel
import AeselStore
import AeselStream
import AeselStreamZeroMQ
import AeselWire
import CLyman
import CrazyIvan
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Which change stream joins CLyman and CrazyIvan: `--stream`.
public enum StreamSetting: Sendable, Hashable, CustomStringConvertible {
    /// A direct call in this process (`memory`, the default).
    case memory
    /// ZeroMQ PUB/SUB: `zmq+inproc://NAME`, `zmq+ipc:///PATH` or `zmq+tcp://HOST:PORT`.
    case zeroMQ(ZeroMQEndpoint)

    public init?(_ text: String) {
        if text == "memory" {
            self = .memory
        } else if let endpoint = ZeroMQEndpoint(streamURL: text) {
            self = .zeroMQ(endpoint)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .memory: "memory"
        case .zeroMQ(let endpoint): endpoint.description
        }
    }
}

/// One CLyman and one CrazyIvan in this process, joined by the chosen change stream. Both UDP channels
/// live on one event loop: with the in-process stream an event is read, handed over and fanned out in one
/// turn; with ZeroMQ the subscriber thread hands each event to that loop.
struct EventPair: Service {
    let ingestChannel: any Channel
    let fanOutChannel: any Channel
    let fanOut: FanOut
    let stream: any ChangeStream
    let locks: ObjectLocks
    let writeBehind: TransformWriteBehind
    let refresher: SceneCacheRefresher
    /// The ZeroMQ subscriber, when the stream is ZeroMQ.
    let subscriber: ZeroMQSubscriber?

    var ingestAddress: SocketAddress { ingestChannel.localAddress! }

    static func start(
        host: String,
        udpPort: Int,
        on eventLoop: any EventLoop,
        store: any AeselStore,
        fanOut configuration: FanOut.Configuration,
        persistInterval: Duration,
        streamSetting: StreamSetting,
        logger: Logger
    ) async throws -> EventPair {
        let cache = SceneDeviceCache()
        let fanOutChannel = try await UDPChannel.bootstrap(on: eventLoop).bind(host: host, port: 0).get()
        let fanOut = FanOut(channel: fanOutChannel, cache: cache, store: store, configuration: configuration, metrics: FanOutMetrics())
        let stream: any ChangeStream
        var subscriber: ZeroMQSubscriber?
        switch streamSetting {
        case .memory:
            stream = InProcessChangeStream(subscriber: fanOut)
        case .zeroMQ(let endpoint):
            do {
                stream = try ZeroMQPublisher(endpoint: endpoint)
                let zeroMQ = try ZeroMQSubscriber(endpoint: endpoint, subscriber: fanOut, eventLoop: eventLoop)
                subscriber = zeroMQ
                try await zeroMQ.ready()
            } catch {
                try? await fanOutChannel.close()
                throw error
            }
        }
        let ingestMetrics = IngestMetrics()
        // Locks survive restarts in the store; the UDP path needs them in memory.
        var locked = ObjectFilter()
        locked.lockedOnly = true
        let lockedObjects = try await store.objects(matching: locked, limit: Int(Int32.max))
        let locks = ObjectLocks(Dictionary(lockedObjects.map { ($0.key, $0.owner) }) { first, _ in first })
        fanOut.preload(Set(lockedObjects.map(\.sceneKey)))
        let writeBehind = TransformWriteBehind(store: store, interval: persistInterval, metrics: ingestMetrics, logger: logger)
        let ingestChannel: any Channel
        do {
            ingestChannel = try await UDPChannel.bootstrap(on: eventLoop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            EventIngestHandler(stream: stream, writeBehind: writeBehind, metrics: ingestMetrics, locks: locks, senders: FanOutSenders(fanOut: fanOut))
                        )
                    }
                }
                .bind(host: host, port: udpPort).get()
        } catch {
            try? await fanOutChannel.close()
            throw error
        }
        return EventPair(
            ingestChannel: ingestChannel,
            fanOutChannel: fanOutChannel,
            fanOut: fanOut,
            stream: stream,
            locks: locks,
            writeBehind: writeBehind,
            refresher: SceneCacheRefresher(cache: cache, store: store, logger: logger),
            subscriber: subscriber
        )
    }

    /// Holds the channels open until graceful shutdown, then closes them.
    func run() async throws {
        try? await gracefulShutdown()
        try? await ingestChannel.close()
        subscriber?.stop()
        (stream as? ZeroMQPublisher)?.stop()
        try? await fanOutChannel.close()
    }
}

/// CLyman asks CrazyIvan's cache which registered device sent a JSON event.
struct FanOutSenders: SenderDirectory {
    let fanOut: FanOut

    func deviceKey(in sceneKey: String, at address: SocketAddress) -> String? {
        fanOut.deviceKey(in: sceneKey, at: address)
    }
}

/// The socket settings of the event path (measured in platform-notes section 4).
enum UDPChannel {
    /// Vector reads (recvmmsg) of this many datagrams per system call.
    static let vectorReadCount = 16

    static func bootstrap(on eventLoop: any EventLoop) -> DatagramBootstrap {
        // One extra byte per slot so an oversized datagram shows as longer than the limit, not truncated to it.
        let slot = EventCodec.maximumDatagramSize + 1
        return DatagramBootstrap(group: eventLoop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
            .channelOption(.maxMessagesPerRead, value: 4)
            .channelOption(.datagramVectorReadMessageCount, value: vectorReadCount)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: slot * vectorReadCount))
            .channelOption(.writeBufferWaterMark, value: .init(low: 1 << 20, high: 4 << 20))
    }
}
