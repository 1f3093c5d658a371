import AeselModel
import AeselSealing
import AeselStore
import AeselStream
import AeselStreamKafka
import AeselStreamUDP
import AeselStreamZeroMQ
import AeselWire
import CLyman
import CrazyIvan
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Which change stream joins CLyman and CrazyIvan: `--stream`.
public enum StreamSetting: Sendable, Hashable, CustomStringConvertible {
    /// A direct call in this process (`memory`, the default).
    case memory
    /// ZeroMQ PUB/SUB: `zmq+inproc://NAME`, `zmq+ipc:///PATH` or `zmq+tcp://HOST:PORT`.
    case zeroMQ(ZeroMQEndpoint)
    /// Kafka: `kafka://HOST:PORT/TOPIC`.
    case kafka(KafkaEndpoint)
    /// The original's UDP framing to CrazyIvan's stream port: `udp://HOST:PORT`.
    case udp(UDPStreamEndpoint)

    public init?(_ text: String) {
        if text == "memory" {
            self = .memory
        } else if let endpoint = ZeroMQEndpoint(streamURL: text) {
            self = .zeroMQ(endpoint)
        } else if let endpoint = KafkaEndpoint(streamURL: text) {
            self = .kafka(endpoint)
        } else if let endpoint = UDPStreamEndpoint(streamURL: text) {
            self = .udp(endpoint)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .memory: "memory"
        case .zeroMQ(let endpoint): endpoint.description
        case .kafka(let endpoint): endpoint.description
        case .udp(let endpoint): endpoint.description
        }
    }
}

/// CLyman's event path: the UDP event port and its reading thread, the publishing side of the change
/// stream, write-behind persistence and the lock table with its refresher.
struct ClymanHalf {
    let port: EventPort
    let stream: any ChangeStream
    let writeBehind: TransformWriteBehind
    let actionEdits: EventActionEdits
    let locks: ObjectLocks
    let lockRefresher: LockRefresher
    let members: SceneMembers
    /// Sealed events' sessions; nil with plaintext events.
    let sessions: EventSessions?

    var ingestAddress: SocketAddress { port.localAddress }

    /// Binds the UDP port, then makes the stream with that address to announce, then starts reading
    /// (datagrams wait in the socket's buffer until then).
    static func start(
        host: String,
        udpPort: Int,
        store: any AeselStore,
        stream makeStream: (SocketAddress) async throws -> any ChangeStream,
        senders: any SenderDirectory,
        sealed: Bool,
        originalCipher: OriginalEventCipher?,
        rateLimit: EventRateLimit,
        persistInterval: Duration,
        logger: Logger
    ) async throws -> ClymanHalf {
        let ingestMetrics = IngestMetrics()
        let sessions = sealed ? EventSessions(evicted: { ingestMetrics.evicted($0, from: .sessions) }) { try await store.registration(sessionKeyID: $0) } : nil
        // Locks live in the store; the UDP path needs them in memory, the refresher keeps them current.
        let lockedObjects = try await store.objectLocks()
        let locks = ObjectLocks(lockedObjects)
        let writeBehind = TransformWriteBehind(store: store, interval: persistInterval, metrics: ingestMetrics, logger: logger)
        let actionEdits = EventActionEdits(store: store, writeBehind: writeBehind, metrics: ingestMetrics, logger: logger)
        let members = SceneMembers(metrics: ingestMetrics) { try await store.memberKeys(ofScene: $0) }
        let port: EventPort
        do {
            port = try EventPort(host: host, port: udpPort)
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            throw ConfigurationError(key: "udp.port", reason: "UDP port \(udpPort) on \(host) is in use by another process; stop it or choose another port")
        }
        do {
            let stream = try await makeStream(port.localAddress)
            let handler = EventIngestHandler(
                writeBehind: writeBehind, actionEdits: actionEdits, metrics: ingestMetrics, locks: locks, senders: senders, members: members,
                sessions: sessions, originalCipher: originalCipher, rateLimit: rateLimit)
            handler.attach(stream)
            port.start(handler)
            if let fanOut = (senders as? FanOutSenders)?.fanOut {
                fanOut.preload(Set(lockedObjects.map(\.sceneKey)))
            }
            return ClymanHalf(
                port: port, stream: stream, writeBehind: writeBehind, actionEdits: actionEdits, locks: locks,
                lockRefresher: LockRefresher(locks: locks, store: store, logger: logger), members: members, sessions: sessions)
        } catch {
            port.stop()
            throw error
        }
    }

    func stop() async {
        port.stop()
        (stream as? ZeroMQPublisher)?.stop()
        (stream as? KafkaPublisher)?.stop()
        (stream as? UDPStreamPublisher)?.stop()
    }
}

/// CrazyIvan's event path: the Scene-Device cache, the fan-out channel, its refresher and, across
/// processes, the subscribing side of the change stream.
struct CrazyIvanHalf {
    let fanOutSocket: FanOutSocket
    let fanOut: FanOut
    /// Where the UDP stream's receiver runs.
    let eventLoop: any EventLoop
    let refresher: SceneCacheRefresher

    static func start(
        host: String,
        on eventLoop: any EventLoop,
        store: any AeselStore,
        fanOut fanOutConfiguration: FanOut.Configuration,
        cache cacheConfiguration: SceneDeviceCache.Configuration,
        logger: Logger
    ) async throws -> CrazyIvanHalf {
        let cache = SceneDeviceCache(configuration: cacheConfiguration)
        let fanOutSocket = try FanOutSocket(host: host)
        let fanOut = FanOut(socket: fanOutSocket, eventLoop: eventLoop, cache: cache, store: store, configuration: fanOutConfiguration, metrics: FanOutMetrics())
        let refresher = SceneCacheRefresher(fanOut: fanOut, store: store, configuration: cacheConfiguration, logger: logger)
        do {
            try await refresher.pinRegionAtStart()
        } catch {
            fanOutSocket.close()
            throw error
        }
        return CrazyIvanHalf(fanOutSocket: fanOutSocket, fanOut: fanOut, eventLoop: eventLoop, refresher: refresher)
    }

    /// Subscribes to a stream that crosses threads or processes and waits for its first heartbeat:
    /// from then on nothing is lost.
    func subscribe(to setting: StreamSetting) async throws -> (any StreamReceiver)? {
        let receiver: any StreamReceiver
        switch setting {
        case .memory: return nil
        case .zeroMQ(let endpoint): receiver = try ZeroMQSubscriber(endpoint: endpoint, subscriber: fanOut)
        case .udp(let endpoint): receiver = try await UDPStreamReceiver(endpoint: endpoint, subscriber: fanOut, eventLoop: eventLoop)
        case .kafka(let endpoint): receiver = try KafkaSubscriber(endpoint: endpoint, group: "aesel-crazyivan-" + endpoint.topic, subscriber: fanOut)
        }
        do {
            try await receiver.ready(timeout: .seconds(30))
        } catch {
            receiver.stop()
            throw error
        }
        return receiver
    }
}

/// The halves this process runs, held open until graceful shutdown: both (`aesel serve`), or one of
/// them (`aesel clyman`, `aesel crazyivan`).
struct EventPair: Service {
    let clyman: ClymanHalf?
    let crazyIvan: CrazyIvanHalf?
    let subscriber: (any StreamReceiver)?

    /// Whether the change stream reaches the partner half.
    var isStreamHealthy: Bool {
        (clyman?.stream.isHealthy ?? true) && (subscriber?.isHealthy ?? true)
    }

    func run() async throws {
        try? await gracefulShutdown()
        await clyman?.stop()
        subscriber?.stop()
        crazyIvan?.fanOutSocket.close()
    }
}

/// CLyman asks CrazyIvan's cache which registered device sent a JSON event.
struct FanOutSenders: SenderDirectory {
    let fanOut: FanOut

    func deviceKey(in sceneKey: String, at address: SocketAddress) -> String? {
        fanOut.deviceKey(in: sceneKey, at: address)
    }
}
