import AeselHTTP
import AeselModel
import AeselStore
import AeselStream
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

/// `aesel serve`: the gateway routes and one CLyman/CrazyIvan pair in one process, wired by the
/// in-process change stream, on an embedded SQLite store.
public struct AeselServer {
    public struct Configuration: Sendable {
        public var host: String
        public var httpPort: Int
        public var udpPort: Int
        public var dataFolder: String
        /// `postgres://user[:password]@host:port/database` for a shared PostgreSQL store; nil for SQLite
        /// in the data folder.
        public var store: String?
        public var fanOut: FanOut.Configuration
        /// The change stream between CLyman and CrazyIvan.
        public var stream: StreamSetting
        /// How often event transforms are written to the store.
        public var persistInterval: Duration

        public init(
            host: String = "127.0.0.1",
            httpPort: Int = 8080,
            udpPort: Int = 8762,
            dataFolder: String = "./aesel-data",
            store: String? = nil,
            fanOut: FanOut.Configuration = .init(),
            stream: StreamSetting = .memory,
            persistInterval: Duration = .milliseconds(200)
        ) {
            self.host = host
            self.httpPort = httpPort
            self.udpPort = udpPort
            self.dataFolder = dataFolder
            self.store = store
            self.fanOut = fanOut
            self.stream = stream
            self.persistInterval = persistInterval
        }
    }

    /// Where the server listens once it runs.
    public struct Endpoints: Sendable, CustomStringConvertible {
        public var http: SocketAddress
        public var udp: SocketAddress

        public var description: String {
            "http=\(http.ipAddress ?? "?"):\(http.port ?? 0) udp=\(udp.ipAddress ?? "?"):\(udp.port ?? 0)"
        }
    }

    private let configuration: Configuration
    private let registry: PrometheusCollectorRegistry
    private let logger: Logger

    /// - Parameter registry: the registry the process's metrics factory writes to; `/metrics` serves it.
    public init(configuration: Configuration, registry: PrometheusCollectorRegistry, logger: Logger) {
        self.configuration = configuration
        self.registry = registry
        self.logger = logger
    }

    /// Every route the server answers, as `METHOD /path`, built by the same code as `run`'s on a
    /// throwaway store and pair (the data folder should be a temporary one).
    public func routes() async throws -> [String] {
        let store = try await openStore()
        let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pair = try await EventPair.start(
            host: configuration.host, udpPort: 0, on: eventLoopGroup.next(), store: store, fanOut: configuration.fanOut,
            persistInterval: configuration.persistInterval, streamSetting: .memory, logger: logger
        )
        let routes = makeRouter(store: store, pair: pair).routes.map { "\($0.method) \($0.path)" }
        try await pair.ingestChannel.close()
        try await pair.fanOutChannel.close()
        try await store.close()
        try await eventLoopGroup.shutdownGracefully()
        return routes.sorted()
    }

    /// The gateway's routes: health, metrics, CrazyIvan's scene and registration routes, and CLyman's
    /// object and property routes, both on their own paths and scoped to a scene.
    private func makeRouter(store: any AeselStore, pair: EventPair) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: EnvelopeErrorMiddleware())
        router.get("/health") { _, _ in
            try JSONResponse.make(["status": "up"])
        }
        let registry = self.registry
        router.get("/metrics") { _, _ in
            var text: [UInt8] = []
            registry.emit(into: &text)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
        let udpAddress = pair.ingestAddress
        let destination = SceneRoutes.EventDestination(host: udpAddress.ipAddress ?? configuration.host, port: udpAddress.port ?? configuration.udpPort)
        SceneRoutes(store: store, fanOut: pair.fanOut, eventDestination: destination).add(to: router)
        for group in [router.group("/v1"), router.group("/v1/scene/{scene}")] {
            ObjectRoutes(store: store, writeBehind: pair.writeBehind, locks: pair.locks, stream: pair.stream).add(to: group)
            PropertyRoutes(store: store, writeBehind: pair.writeBehind, stream: pair.stream).add(to: group)
        }
        return router
    }

    private func openStore() async throws -> any AeselStore {
        guard let url = configuration.store else { return try SQLiteStore(dataFolder: configuration.dataFolder) }
        return try await PostgresStore(url: url, logger: logger)
    }

    /// Runs until SIGINT or SIGTERM, then stops taking requests and events, flushes the store and returns.
    /// - Parameter onReady: called once with the bound addresses.
    public func run(onReady: @escaping @Sendable (Endpoints) -> Void = { _ in }) async throws {
        let store = try await openStore()
        // One thread for the whole event path: ingest, hand-over and fan-out run in the same turn.
        let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let eventLoop = eventLoopGroup.next()
        do {
            let pair = try await EventPair.start(
                host: configuration.host,
                udpPort: configuration.udpPort,
                on: eventLoop,
                store: store,
                fanOut: configuration.fanOut,
                persistInterval: configuration.persistInterval,
                streamSetting: configuration.stream,
                logger: logger
            )
            let udpAddress = pair.ingestAddress
            let router = makeRouter(store: store, pair: pair)

            let logger = self.logger
            let app = Application(
                router: router,
                configuration: .init(address: .hostname(configuration.host, port: configuration.httpPort), serverName: "aesel"),
                onServerRunning: { channel in
                    guard let http = channel.localAddress else { return }
                    let endpoints = Endpoints(http: http, udp: udpAddress)
                    logger.info("aesel serving", metadata: ["aesel.endpoints": "\(endpoints)"])
                    onReady(endpoints)
                },
                logger: logger
            )
            // Shutdown runs in reverse: HTTP stops, then UDP, then the refresher, then the last flush.
            let group = ServiceGroup(
                configuration: .init(
                    services: [pair.writeBehind, pair.refresher, pair, app],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger
                )
            )
            try await group.run()
        } catch {
            try? await store.close()
            try? await eventLoopGroup.shutdownGracefully()
            throw error
        }
        try await store.close()
        try await eventLoopGroup.shutdownGracefully()
        logger.info("aesel stopped")
    }
}
