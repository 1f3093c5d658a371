public import AeselAuth
public import AeselHTTP
import AeselModel
public import AeselSealing
import AeselStore
import AeselWire
import AeselStream
import AeselStreamKafka
import AeselStreamUDP
import AeselStreamZeroMQ
import Adrestia
import CoreMetrics
import CLyman
public import CrazyIvan
import Foundation
import Hummingbird
public import Logging
public import NIOCore
import NIOPosix
public import Prometheus
import ServiceLifecycle
import UnixSignals

/// The event-path processes: `aesel serve` (everything in one process), `aesel pair` (one CLyman and
/// one CrazyIvan, behind Adrestia when given a discovery), and `aesel clyman` and `aesel crazyivan` (one
/// half each, joined by a change stream and a shared store). `AdrestiaServer` is the cluster manager.
public struct PairServer {
    /// Which halves this process runs: both (`all` for `aesel serve`, which also answers the endpoint
    /// route with its own UDP port; `pair`), or one half.
    public enum Role: String, Sendable {
        case all, pair, clyman, crazyIvan = "crazyivan"

        /// The original's ports where it had them: Adrestia's 8080 for `aesel serve` (which is the gateway
        /// too), CLyman's 8768 for a pair and CLyman, CrazyIvan's 8766; so a CLyman and a CrazyIvan, or
        /// Adrestia and a pair, start side by side on one machine without options.
        public var defaultHTTPPort: Int {
            switch self {
            case .all: 8080
            case .pair, .clyman: 8768
            case .crazyIvan: 8766
            }
        }
    }

    public struct Configuration: Sendable {
        public var role: Role
        public var host: String
        /// The host devices are told to send events to (`event_destination_host`) and, for a pair behind
        /// Adrestia, the one it announces. Nil: the bound host, or with a wildcard bind the address each
        /// request came in on.
        public var advertiseHost: String?
        public var httpPort: Int
        public var udpPort: Int
        public var dataFolder: String
        /// `postgres://user[:password]@host:port/database` for a shared PostgreSQL store; nil for SQLite
        /// in the data folder.
        public var store: String?
        public var fanOut: FanOut.Configuration
        public var cache: SceneDeviceCache.Configuration
        /// The change stream between CLyman and CrazyIvan.
        public var stream: StreamSetting
        /// How often event transforms are written to the store.
        public var persistInterval: Duration
        /// For `aesel pair` behind Adrestia: who the pair is and where it announces itself.
        public var identity: PairIdentity?
        public var httpLimits: HTTPConnectionLimits
        /// Whether events are sealed per device (docs/protocol.md, Sealed events).
        public var eventSecurity: EventSecurity
        /// With ``EventSecurity/original``: the deployment's two secrets.
        public var originalSecrets: OriginalEventCipher.Secrets?
        /// Each device's event rate on the UDP path.
        public var eventRateLimit: EventRateLimit
        /// HTTPS for the listener (the pair's announced URLs are then `https://`), and what its
        /// announcements and the store's verifying connections trust.
        public var tls: TLSSettings
        /// Who may call: the credentials the routes check, and the cluster secret the pair's own calls
        /// (announcements) carry and Adrestia's calls must carry.
        public var access: AccessControl
        /// How often a WebSocket observer is sent the scene's newest poses.
        public var observerInterval: Duration

        /// - Parameter httpPort: nil for the role's own default (``Role/defaultHTTPPort``).
        public init(
            role: Role = .all,
            host: String = "127.0.0.1",
            advertiseHost: String? = nil,
            httpPort: Int? = nil,
            udpPort: Int = 8762,
            dataFolder: String = StoreLocation.defaultDataFolder,
            store: String? = nil,
            fanOut: FanOut.Configuration = .init(),
            cache: SceneDeviceCache.Configuration = .init(),
            stream: StreamSetting = .memory,
            persistInterval: Duration = .milliseconds(200),
            identity: PairIdentity? = nil,
            httpLimits: HTTPConnectionLimits = .init(),
            eventSecurity: EventSecurity? = nil,
            originalSecrets: OriginalEventCipher.Secrets? = nil,
            eventRateLimit: EventRateLimit = .standard,
            tls: TLSSettings = .init(),
            access: AccessControl = .open,
            observerInterval: Duration = .milliseconds(33)
        ) {
            self.access = access
            self.observerInterval = observerInterval
            self.originalSecrets = originalSecrets
            self.eventRateLimit = eventRateLimit
            self.eventSecurity = eventSecurity ?? EventSecurity.standard(role: role, host: host)
            self.tls = tls
            self.role = role
            self.host = host
            self.advertiseHost = advertiseHost
            self.httpPort = httpPort ?? role.defaultHTTPPort
            self.udpPort = udpPort
            self.dataFolder = dataFolder
            self.store = store
            self.fanOut = fanOut
            self.cache = cache
            self.stream = stream
            self.persistInterval = persistInterval
            self.identity = identity
            self.httpLimits = httpLimits
        }
    }

    /// How events travel between devices and the pair.
    public enum EventSecurity: String, Sendable, CaseIterable {
        /// Each device's datagrams sealed with its session key, in both directions.
        case sealed
        /// The original's plaintext datagrams: anyone who reaches the port is believed.
        case plaintext
        /// The original's AES-256-CBC under one deployment key (reference 2.5), for its devices: secret
        /// from onlookers, but no integrity and no replay protection, and every device knows the key.
        case original = "aes-cbc"

        /// Sealed, but for `aesel serve` on a loopback address: the laptop's open mode, where the
        /// original's clients and the README's examples work as they are.
        public static func standard(role: Role, host: String) -> EventSecurity {
            role == .all && isLoopback(host) ? .plaintext : .sealed
        }
    }

    /// A pair's id and region, and the discovery it announces itself to.
    public struct PairIdentity: Sendable {
        public var pairID: String
        public var region: String
        public var discovery: DiscoverySetting
    }

    /// Where the server listens once it runs; `udp` is nil for a CrazyIvan alone.
    public struct Endpoints: Sendable {
        public var http: SocketAddress
        public var udp: SocketAddress?
    }

    private let configuration: Configuration
    private let registry: PrometheusCollectorRegistry
    private let logger: Logger

    /// - Parameter registry: the registry the process's metrics factory writes to; `/metrics` serves it.
    public init(configuration: Configuration, registry: PrometheusCollectorRegistry, logger: Logger) {
        (self.configuration, self.registry, self.logger) = (configuration, registry, logger)
    }

    /// Runs until SIGINT or SIGTERM, then stops taking requests and events, flushes the store and returns.
    /// - Parameter onReady: called once with the bound addresses.
    public func run(onReady: @escaping @Sendable (Endpoints) -> Void = { _ in }) async throws {
        ClusterTLS.trust(try configuration.tls.clientConfiguration())
        ClusterCredentials.use(configuration.access.clusterSecret)
        try await withStore(at: storeLocation, logger: logger) { store in try await run(store: store, onReady: onReady) }
    }

    private func run(store: any AeselStore, onReady: @escaping @Sendable (Endpoints) -> Void) async throws {
        // One thread for the whole event path: ingest, hand-over and fan-out run in the same turn.
        let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let pair = try await startPair(store: store, eventLoop: eventLoopGroup.next(), udpPort: configuration.udpPort)
            let router = makeRouter(store: store, pair: pair)
            let logger = self.logger
            let udpAddress = pair.clyman?.ingestAddress
            let announcer = configuration.identity.map { PairAnnouncer(discovery: $0.discovery, logger: logger) }
            let identity = configuration.identity
            let announcedHost = configuration.advertiseHost ?? configuration.host
            let scheme = configuration.tls.scheme
            let app = try makeApplication(
                router: router, webSockets: makeWebSocketRouter(store: store, pair: pair), host: configuration.host, port: configuration.httpPort, limits: configuration.httpLimits, tls: configuration.tls,
                serverName: "aesel", logger: logger
            ) { http in
                logger.info("aesel serving", metadata: ["aesel.http": "\(http)", "aesel.udp": "\(udpAddress.map { "\($0)" } ?? "none")"])
                if let announcer, let identity, let udpAddress {
                    let base = "\(scheme)://\(Self.hostPort(announcedHost, http.port))"
                    announcer.start(PairAnnouncement(
                        id: identity.pairID, region: identity.region, clymanUDP: Self.hostPort(announcedHost, udpAddress.port),
                        clymanHTTP: base, crazyIvanHTTP: base))
                }
                onReady(Endpoints(http: http, udp: udpAddress))
            }
            // Shutdown runs in reverse: HTTP stops, then the UDP keyframe and action updates still waiting
            // are stored and sent, then UDP and the stream stop, then the refreshers, then the last flush,
            // then the store closes.
            var services: [any Service] = [store]
            if let clyman = pair.clyman { services += [clyman.writeBehind, clyman.lockRefresher] }
            if let crazyIvan = pair.crazyIvan { services.append(crazyIvan.refresher) }
            services.append(pair)
            if let clyman = pair.clyman { services.append(clyman.actionEdits) }
            services.append(app)
            // Announced last, so withdrawn first on shutdown.
            if let announcer { services.append(announcer) }
            let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        } catch {
            try? await eventLoopGroup.shutdownGracefully()
            throw error
        }
        try await eventLoopGroup.shutdownGracefully()
        logger.info("aesel stopped")
    }

    /// Where devices send events: the CLyman's announced host, unless it is a wildcard (`--host 0.0.0.0`
    /// and no advertise host); then this process's advertise host, else the address the request came in
    /// on (an IPv4-mapped one as IPv4), which the device reached this host at.
    static func eventHost(announced: String, advertised: String?, requestArrivedAt: SocketAddress?) -> String {
        if !announced.isEmpty, !isWildcard(announced) { return announced }
        if let advertised { return advertised }
        guard let local = requestArrivedAt?.ipAddress else { return announced }
        let mappedPrefix = "::ffff:"
        if local.hasPrefix(mappedPrefix), local.contains(".") { return String(local.dropFirst(mappedPrefix.count)) }
        return local
    }

    /// `host:port`, with IPv6 hosts in brackets.
    static func hostPort(_ host: String, _ port: Int?) -> String {
        host.contains(":") ? "[\(host)]:\(port ?? 0)" : "\(host):\(port ?? 0)"
    }

    /// Every route the server answers, as `METHOD /path`, built by the same code as `run`'s on a
    /// throwaway store and pair (the data folder should be a temporary one).
    public func routes() async throws -> [String] {
        try await withStore(at: storeLocation, logger: logger) { store in try await routes(store: store) }
    }

    private func routes(store: any AeselStore) async throws -> [String] {
        let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pair = try await startPair(store: store, eventLoop: eventLoopGroup.next(), udpPort: 0)
        let routes = makeRouter(store: store, pair: pair).routes.map { "\($0.method) \($0.path)" }
        await pair.clyman?.stop()
        pair.subscriber?.stop()
        pair.crazyIvan?.fanOutSocket.close()
        try await eventLoopGroup.shutdownGracefully()
        return routes.sorted()
    }

    static func originalCiphers(_ secrets: OriginalEventCipher.Secrets) throws -> (toPair: OriginalEventCipher, toDevice: OriginalEventCipher) {
        do {
            return (try OriginalEventCipher(secrets.toPair), try OriginalEventCipher(secrets.toDevice))
        } catch {
            throw ConfigurationError(key: "event.aes", reason: "\(error)")
        }
    }

    /// Starts the halves of this process's role, joined by the configured stream.
    private func startPair(store: any AeselStore, eventLoop: any EventLoop, udpPort: Int) async throws -> EventPair {
        let role = configuration.role
        let setting = configuration.stream
        guard setting != .memory || role == .all || role == .pair else {
            throw ConfigurationError(key: "stream", reason: "aesel \(role.rawValue) needs zmq+ipc://…, zmq+tcp://…, kafka://… or udp://…")
        }
        let sealed = configuration.eventSecurity == .sealed
        let original = try configuration.eventSecurity == .original ? configuration.originalSecrets.map(Self.originalCiphers) : nil
        var fanOutConfiguration = configuration.fanOut
        fanOutConfiguration.sealed = sealed
        fanOutConfiguration.originalCipher = original?.toDevice
        let crazyIvan =
            role == .clyman
            ? nil
            : try await CrazyIvanHalf.start(
                host: configuration.host, on: eventLoop, store: store, fanOut: fanOutConfiguration, cache: configuration.cache, logger: logger)
        var clyman: ClymanHalf?
        if role != .crazyIvan {
            let senders: any SenderDirectory = crazyIvan.map { FanOutSenders(fanOut: $0.fanOut) } ?? StoreSenderDirectory(store: store)
            clyman = try await ClymanHalf.start(
                host: configuration.host, udpPort: udpPort, store: store,
                stream: { [advertiseHost = configuration.advertiseHost, host = configuration.host] address in
                    let announcement = "\(advertiseHost ?? address.ipAddress ?? ""):\(address.port ?? 0)"
                    switch setting {
                    case .memory: return InProcessChangeStream(subscriber: crazyIvan!.fanOut)
                    case .zeroMQ(let endpoint): return try ZeroMQPublisher(endpoint: endpoint, announcement: announcement)
                    case .kafka(let endpoint): return try KafkaPublisher(endpoint: endpoint, announcement: announcement)
                    case .udp(let endpoint):
                        let channel = try await DatagramBootstrap(group: eventLoop).bind(host: host, port: 0).get()
                        return try UDPStreamPublisher(endpoint: endpoint, channel: channel, announcement: announcement)
                    }
                },
                senders: senders, sealed: sealed, originalCipher: original?.toPair, rateLimit: configuration.eventRateLimit, persistInterval: configuration.persistInterval, logger: logger
            )
        }
        var subscriber: (any StreamReceiver)?
        if let crazyIvan { subscriber = try await crazyIvan.subscribe(to: setting) }
        return EventPair(clyman: clyman, crazyIvan: crazyIvan, subscriber: subscriber)
    }

    /// The routes of this process's role: health and metrics; CrazyIvan's scene and registration routes;
    /// CLyman's object and property routes, on their own paths and, with the gateway, scoped to a scene.
    private func makeRouter(store: any AeselStore, pair: EventPair) -> Router<AeselRequestContext> {
        let router = makeHTTPRouter(context: AeselRequestContext.self, limits: configuration.httpLimits, access: configuration.access)
        let streamHealth = CoreMetrics.Gauge(label: "aesel_stream_healthy")
        let streamDropped = CoreMetrics.Gauge(label: "aesel_stream_dropped_total")
        let streamRejected = CoreMetrics.Gauge(label: "aesel_stream_rejected_total")
        router.get("/health") { _, _ in
            guard pair.isStreamHealthy else {
                return try JSONResponse.make(["status": "down", "reason": "the change stream does not reach the partner half"], status: .serviceUnavailable)
            }
            return try JSONResponse.make(["status": "up"])
        }
        addMetricsRoute(to: router, registry: registry) {
            streamHealth.record(pair.isStreamHealthy ? 1 : 0)
            streamDropped.record(pair.clyman?.stream.droppedCount ?? 0)
            streamRejected.record(pair.subscriber?.rejectedCount ?? 0)
        }
        if let crazyIvan = pair.crazyIvan {
            let (host, advertiseHost) = (configuration.host, configuration.advertiseHost)
            let localClyman = pair.clyman?.ingestAddress
            let subscriber = pair.subscriber
            SceneRoutes(
                store: store, fanOut: crazyIvan.fanOut, sealed: configuration.eventSecurity == .sealed, sessions: pair.clyman?.sessions,
                originalSecrets: configuration.eventSecurity == .original ? configuration.originalSecrets : nil
            ) {
                requestArrivedAt in
                // The pair's CLyman: this process's, or the one the stream's heartbeats announce
                // (`host:port`; the host may be IPv6, so the port is after the last colon).
                var announced = (advertiseHost ?? localClyman?.ipAddress ?? host, localClyman?.port ?? 0)
                if localClyman == nil {
                    let text = subscriber?.partnerAnnouncement ?? ""
                    if let colon = text.lastIndex(of: ":") { announced = (String(text[..<colon]), Int(text[text.index(after: colon)...]) ?? 0) }
                }
                return .init(host: Self.eventHost(announced: announced.0, advertised: advertiseHost, requestArrivedAt: requestArrivedAt), port: announced.1)
            }.add(to: router)
        }
        if configuration.role == .all, let udp = pair.clyman?.ingestAddress {
            // The one pair is every scene's: what Adrestia answers for a cluster, so one SDK serves both.
            let announced = configuration.advertiseHost ?? udp.ipAddress ?? configuration.host
            router.group().add(middleware: SceneGuard<AeselRequestContext>(list: .scenes)).get("/v1/scene/{scene}/endpoint") { _, context in
                let host = Self.eventHost(announced: announced, advertised: nil, requestArrivedAt: context.localAddress)
                return try JSONResponse.make(EventEndpoint(host: host, port: udp.port ?? 0, pair: "local", region: ""))
            }
        }
        if let clyman = pair.clyman {
            // Scene-scoped object routes where devices' calls arrive: the gateway's own, or a pair's, to
            // which Adrestia forwards them.
            let scoped = configuration.role == .all || configuration.role == .pair
            let groups = scoped ? [router.group("/v1"), router.group("/v1/scene/{scene}")] : [router.group("/v1")]
            for group in groups {
                ObjectRoutes(store: store, writeBehind: clyman.writeBehind, locks: clyman.locks, stream: clyman.stream, members: clyman.members).add(to: group)
                PropertyRoutes(store: store, writeBehind: clyman.writeBehind, stream: clyman.stream, members: clyman.members).add(to: group)
            }
        }
        return router
    }

    /// WebSocket devices, where both halves run in this process; nil elsewhere.
    private func makeWebSocketRouter(store: any AeselStore, pair: EventPair) -> Router<AeselRequestContext>? {
        guard let clyman = pair.clyman, let crazyIvan = pair.crazyIvan else { return nil }
        let router = makeHTTPRouter(context: AeselRequestContext.self, limits: configuration.httpLimits, access: configuration.access)
        WebSocketDeviceRoutes(store: store, port: clyman.port, fanOut: crazyIvan.fanOut.webSockets, observerInterval: configuration.observerInterval)
            .add(to: router)
        return router
    }

    private var storeLocation: StoreLocation {
        StoreLocation(url: configuration.store, dataFolder: configuration.dataFolder, certificateAuthority: configuration.tls.certificateAuthorityPath)
    }
}
