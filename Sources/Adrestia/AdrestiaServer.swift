import CoreMetrics
import UnixSignals
public import AeselAuth
public import AeselHTTP
public import AeselStore
import Hummingbird
public import Logging
public import NIOCore
import NIOPosix
public import Prometheus
import ServiceLifecycle

/// `aesel adrestia`: the gateway and cluster manager alone. Pairs announce themselves through
/// discovery; Adrestia probes them, assigns scenes to healthy pairs of their region, routes the HTTP API
/// to them, and moves scenes when a pair goes down. With etcd discovery several instances share etcd
/// and the store: all serve the gateway and probe, one elected leader moves scenes.
public struct AdrestiaServer {
    public struct Configuration: Sendable {
        public var host: String
        public var httpPort: Int
        /// The address pairs send probes back to, when `host` is a wildcard.
        public var advertiseHost: String?
        public var discovery: DiscoverySetting
        public var cluster: ClusterSettings
        public var httpLimits: HTTPConnectionLimits
        /// HTTPS for the listener, and what the calls to pairs, etcd and the leader trust.
        public var tls: TLSSettings
        /// This instance's name in the leader election and in its probe device's key; by default its
        /// advertised `host:port`. Keep it the same across restarts.
        public var instanceID: String?
        /// Who may call: the credentials Adrestia checks, and the cluster secret it sends and accepts.
        public var access: AccessControl

        public init(
            host: String = "127.0.0.1", advertiseHost: String? = nil, httpPort: Int = 8080, discovery: DiscoverySetting = .embedded(adrestia: nil),
            cluster: ClusterSettings = .init(), httpLimits: HTTPConnectionLimits = .init(), tls: TLSSettings = .init(),
            instanceID: String? = nil, access: AccessControl = .open
        ) {
            self.access = access
            self.tls = tls
            self.instanceID = instanceID
            self.host = host
            self.advertiseHost = advertiseHost
            self.httpPort = httpPort
            self.discovery = discovery
            self.cluster = cluster
            self.httpLimits = httpLimits
        }
    }

    private let configuration: Configuration
    private let registry: PrometheusCollectorRegistry
    private let logger: Logger

    public init(configuration: Configuration, registry: PrometheusCollectorRegistry, logger: Logger) {
        (self.configuration, self.registry, self.logger) = (configuration, registry, logger)
    }

    /// Runs until SIGINT or SIGTERM on `store` (the scene-to-pair mapping), which the caller opens; the
    /// service group closes it last on graceful shutdown.
    /// - Parameter onReady: called once with the bound HTTP address.
    public func run(store: any AeselStore, onReady: @escaping @Sendable (SocketAddress) -> Void = { _ in }) async throws {
        ClusterTLS.trust(try configuration.tls.clientConfiguration())
        ClusterCredentials.use(configuration.access.clusterSecret)
        let (cluster, router) = makeCluster(store: store)
        let logger = self.logger
        let discovery = configuration.discovery
        let advertisedHost = configuration.advertiseHost ?? configuration.host
        let instanceID = configuration.instanceID
        let leadership = cluster.leadership
        let scheme = configuration.tls.scheme
        let webSockets = makeHTTPRouter(context: AeselRequestContext.self, limits: configuration.httpLimits, access: configuration.access)
        GatewaySocketRoutes(gateway: GatewayRoutes(cluster: cluster, registry: nil), logger: logger).add(to: webSockets)
        let app = try makeApplication(
            router: router, webSockets: webSockets, host: configuration.host, port: configuration.httpPort, limits: configuration.httpLimits, tls: configuration.tls,
            serverName: "aesel-adrestia", logger: logger
        ) { http in
            let hostPort = "\(advertisedHost.contains(":") ? "[\(advertisedHost)]" : advertisedHost):\(http.port ?? 0)"
            let me = LeaderRecord(instance: instanceID ?? hostPort, url: scheme + "://" + hostPort)
            leadership.start(as: me)
            logger.info("adrestia serving", metadata: ["aesel.http": "\(http)", "aesel.discovery": "\(discovery)", "aesel.instance": "\(me.instance)"])
            onReady(http)
        }
        leadership.whenLeading { Task { await cluster.sweepStrandedScenes() } }
        let prober = HealthProber(
            cluster: cluster, host: configuration.host, advertisedHost: advertisedHost,
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
        // The store first, so that it closes last; the leader resigns after the gateway has stopped.
        let group = ServiceGroup(
            configuration: .init(services: [store, leadership, prober, app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        logger.info("adrestia stopped")
    }

    /// Adrestia's own routes, as `METHOD /path`, built by the same code as `run`'s (on a throwaway
    /// store). Every other `/v1` call is forwarded to a pair.
    public func routes(store: any AeselStore) -> [String] {
        makeCluster(store: store).router.routes.map { "\($0.method) \($0.path)" }.sorted()
    }

    /// The cluster manager over the configured discovery, and the router that serves it.
    private func makeCluster(store: any AeselStore) -> (cluster: ClusterManager, router: Router<AeselRequestContext>) {
        let embedded: EmbeddedRegistry?
        let directory: any PairDirectory
        let election: Leadership.Mode
        switch configuration.discovery {
        case .embedded:
            let registry = EmbeddedRegistry()
            embedded = registry
            directory = registry
            election = .sole
        case .etcd(let endpoint, let cluster):
            let etcd = EtcdClient(endpoint: endpoint)
            embedded = nil
            directory = EtcdDirectory(etcd: etcd, cluster: cluster)
            election = .elected(etcd, key: EtcdClient.leaderKey(cluster: cluster))
        }
        let leadership = Leadership(mode: election, timeout: configuration.cluster.leaderTimeout, logger: logger)
        let cluster = ClusterManager(settings: configuration.cluster, store: store, directory: directory, leadership: leadership, logger: logger)
        let router = makeHTTPRouter(context: AeselRequestContext.self, limits: configuration.httpLimits, access: configuration.access)
        router.get("/health") { _, _ in try JSONResponse.make(["status": "up"]) }
        let pairsAnnounced = CoreMetrics.Gauge(label: "aesel_pairs")
        let pairsHealthy = CoreMetrics.Gauge(label: "aesel_pairs_healthy")
        let leading = CoreMetrics.Gauge(label: "aesel_leader")
        addMetricsRoute(to: router, registry: registry) {
            leading.record(leadership.isLeading ? 1 : 0)
            let pairs = cluster.snapshot
            pairsAnnounced.record(pairs.count)
            pairsHealthy.record(pairs.filter(\.healthy).count)
        }
        GatewayRoutes(cluster: cluster, registry: embedded).add(to: router)
        return (cluster, router)
    }
}
