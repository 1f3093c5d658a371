import Adrestia
import AeselBench
import AeselServer
import AeselHTTP
import AeselModel
import ArgumentParser
import CrazyIvan
import Foundation
import Logging
import Metrics
import NIOCore
import Prometheus

@main
struct AeselCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aesel",
        abstract: "Aesel: a real-time back end that keeps 3D scenes in sync across devices.",
        subcommands: [Serve.self, AdrestiaCommand.self, Pair.self, Clyman.self, CrazyIvanCommand.self, BenchCommand.self, Routes.self, Relay.self]
    )
}

/// How long HTTP clients may take, for every server process.
struct HTTPOptions: ParsableArguments {
    @Option(help: "Seconds an HTTP connection may stay open between requests.")
    var httpIdleTimeout = 60.0

    @Option(help: "Seconds from a request's first byte to the end of its head.")
    var httpHeaderTimeout = 10.0

    @Option(help: "Seconds from the end of a request's head to the end of its body.")
    var httpBodyTimeout = 30.0

    func validate() throws {
        guard [httpIdleTimeout, httpHeaderTimeout, httpBodyTimeout].allSatisfy({ $0 > 0 && $0 < 86_400 }) else {
            throw ValidationError("HTTP timeouts are seconds, above 0 and under a day")
        }
    }

    var limits: HTTPConnectionLimits {
        func seconds(_ value: Double) -> TimeAmount { .nanoseconds(Int64(value * 1e9)) }
        return HTTPConnectionLimits(idleTimeout: seconds(httpIdleTimeout), headerTimeout: seconds(httpHeaderTimeout), bodyTimeout: seconds(httpBodyTimeout))
    }
}

/// The options every server process takes.
struct ServerOptions: ParsableArguments {
    @Option(help: "The address to listen on (HTTP and UDP).")
    var host = "127.0.0.1"

    @Option(help: "The HTTP port (0 picks a free one).")
    var httpPort = 8080

    @Option(help: "The UDP port devices send events to (0 picks a free one).")
    var udpPort = 8762

    @Option(help: "The data folder; the SQLite file lives here.")
    var data = "./aesel-data"

    @Option(help: "A shared PostgreSQL store, postgres://user[:password]@host:port/database, instead of SQLite in the data folder.")
    var store: String?

    @Option(help: "The change stream between CLyman and CrazyIvan: memory, zmq+inproc://NAME, zmq+ipc:///PATH, zmq+tcp://HOST:PORT, kafka://HOST:PORT/TOPIC or udp://HOST:PORT.")
    var stream: StreamSetting = .memory

    @Flag(help: "Also send each event back to the device that sent it, as the original did.")
    var echoToSender = false

    @Option(help: "Milliseconds between writes of event transforms to the store (write-behind). Reads see new transforms at once.")
    var persistInterval = 200

    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    @OptionGroup var http: HTTPOptions

    /// Runs the server with these options in `role` until SIGINT or SIGTERM.
    func run(_ role: PairServer.Role, identity: PairServer.PairIdentity? = nil) async throws {
        let (logger, registry) = bootstrapObservability(logLevel: logLevel)
        let server = PairServer(
            configuration: .init(
                role: role,
                host: host,
                httpPort: httpPort,
                udpPort: udpPort,
                dataFolder: data,
                store: store,
                fanOut: .init(echoToSender: echoToSender),
                stream: stream,
                persistInterval: .milliseconds(persistInterval),
                identity: identity,
                httpLimits: http.limits
            ),
            registry: registry,
            logger: logger
        )
        let host = self.host
        try await server.run { endpoints in
            var fields = ["http": "\(endpoints.http.ipAddress ?? host):\(endpoints.http.port ?? 0)"]
            if let udp = endpoints.udp { fields["udp"] = "\(udp.ipAddress ?? host):\(udp.port ?? 0)" }
            ReadyLine.print(fields)
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway and one CLyman/CrazyIvan pair in one process, on an embedded SQLite store."
    )

    @OptionGroup var options: ServerOptions

    func run() async throws {
        try await options.run(.all)
    }
}

/// An address that means "every interface": others cannot reach a process at it.
func isWildcard(_ host: String) -> Bool {
    host == "0.0.0.0" || host == "::" || host == "[::]"
}

/// The process's logger and the registry `/metrics` serves.
func bootstrapObservability(logLevel: Logger.Level) -> (Logger, PrometheusCollectorRegistry) {
    var logger = Logger(label: "aesel")
    logger.logLevel = logLevel
    let registry = PrometheusCollectorRegistry()
    MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    return (logger, registry)
}

struct Pair: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one CLyman and one CrazyIvan in one process; with --discovery, as a pair behind Adrestia."
    )

    @OptionGroup var options: ServerOptions

    @Option(help: "Where the pair announces itself: Adrestia's base URL (embedded discovery) or etcd://HOST:PORT[/CLUSTER].")
    var discovery: DiscoverySetting?

    @Option(help: "With --discovery: the pair's region; scenes of this region are assigned to it.")
    var region = "default"

    @Option(help: "With --discovery: the pair's id, unique in the cluster and the same across restarts.")
    var pairId: String?

    @Option(help: "With --discovery: the address devices and Adrestia reach this pair at, when --host is a wildcard such as 0.0.0.0.")
    var advertiseHost: String?

    func validate() throws {
        guard let discovery else { return }
        if case .embedded(adrestia: nil) = discovery {
            throw ValidationError("a pair's --discovery is Adrestia's base URL (http://HOST:PORT) or etcd://HOST:PORT")
        }
        guard let pairId, !pairId.isEmpty else { throw ValidationError("--discovery needs --pair-id") }
        if isWildcard(advertiseHost ?? options.host) {
            throw ValidationError("--host \(options.host) is a wildcard: give --advertise-host, the address others reach this pair at")
        }
    }

    func run() async throws {
        let identity = discovery.map {
            PairServer.PairIdentity(pairID: pairId ?? "", region: region, discovery: $0, advertiseHost: advertiseHost ?? options.host)
        }
        try await options.run(.pair, identity: identity)
    }
}

struct AdrestiaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adrestia",
        abstract: "Run the gateway and cluster manager alone: pairs announce themselves, Adrestia health-checks them, assigns scenes and fails over."
    )

    @Option(help: "The address to listen on (HTTP, and the UDP health probes).")
    var host = "127.0.0.1"

    @Option(help: "The address pairs send health probes back to, when --host is a wildcard such as 0.0.0.0.")
    var advertiseHost: String?

    @Option(help: "The HTTP port (0 picks a free one).")
    var httpPort = 8080

    @Option(help: "The data folder; the SQLite file lives here.")
    var data = "./aesel-data"

    @Option(help: "A shared PostgreSQL store, postgres://user[:password]@host:port/database, instead of SQLite in the data folder.")
    var store: String?

    @Option(help: "Discovery: embedded (pairs announce to this process) or etcd://HOST:PORT[/CLUSTER] (pairs under /CLUSTER/pairs/, default aesel).")
    var discovery: DiscoverySetting = .embedded(adrestia: nil)

    @Option(help: "Milliseconds between health probes of each pair.")
    var probeInterval = 50

    @Option(help: "Missed probes (or failed HTTP checks) in a row after which a pair is down.")
    var misses = 3

    @Flag(help: "Let a scene move to a pair of another region when its own region has no healthy pair.")
    var crossRegionFailover = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    @OptionGroup var http: HTTPOptions

    func validate() throws {
        guard probeInterval > 0, misses > 0 else { throw ValidationError("--probe-interval and --misses must be positive") }
        if case .embedded(adrestia: .some) = discovery { throw ValidationError("Adrestia's --discovery is embedded or etcd://HOST:PORT") }
        if isWildcard(advertiseHost ?? host) {
            throw ValidationError("--host \(host) is a wildcard: give --advertise-host, the address pairs reach Adrestia's probes at")
        }
    }

    func run() async throws {
        let (logger, registry) = bootstrapObservability(logLevel: logLevel)
        let settings = ClusterSettings(probeInterval: .milliseconds(probeInterval), missesAllowed: misses, crossRegionFailover: crossRegionFailover)
        let server = AdrestiaServer(
            configuration: .init(
                host: host, advertiseHost: advertiseHost, httpPort: httpPort, discovery: discovery,
                cluster: settings, httpLimits: http.limits),
            registry: registry,
            logger: logger
        )
        let host = self.host
        try await withStore(at: StoreLocation(url: store, dataFolder: data), logger: logger) { store in
            try await server.run(store: store) { http in
                ReadyLine.print(["http": "\(http.ipAddress ?? host):\(http.port ?? 0)"])
            }
        }
    }
}

struct Clyman: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clyman",
        abstract: "Run CLyman alone: UDP event ingest and the object and property API, publishing to a ZeroMQ stream."
    )

    @OptionGroup var options: ServerOptions

    func run() async throws {
        try await options.run(.clyman)
    }
}

struct CrazyIvanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crazyivan",
        abstract: "Run CrazyIvan alone: the scene and registration API and the UDP fan-out, subscribed to a ZeroMQ stream."
    )

    @OptionGroup var options: ServerOptions

    func run() async throws {
        try await options.run(.crazyIvan)
    }
}

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the event path end to end with simulated devices on loopback."
    )

    @Option(help: "A running server's base URL, e.g. http://127.0.0.1:8080. Without it, the benchmark starts one.")
    var url: String?

    @Option(help: "Scenes.")
    var scenes = 10

    @Option(help: "Devices per scene.")
    var devices = 8

    @Option(help: "Updates per second sent by each device.")
    var rate = 60.0

    @Option(help: "Seconds measured per run.")
    var seconds = 5.0

    @Option(help: "Seconds sent before measuring.")
    var warmup = 0.5

    @Option(help: "Event format the devices send and receive: binary or json.")
    var format: EventFormat = .binary

    @Flag(help: "Also run the same load through the baseline relay (a plain recvfrom/sendto loop).")
    var baseline = false

    @Flag(help: "Search for the highest input rate with at most 0.1% loss, starting from --rate.")
    var findMax = false

    @Flag(help: "Time each stage of one event's path on its own (decode, lookup, encode, kernel sends) instead.")
    var stages = false

    @Option(help: "With no --url: serve (one process) or split (aesel clyman and aesel crazyivan; needs a ZeroMQ or Kafka --stream).")
    var layout: BenchLayout = .serve

    @Flag(help: "Measure HTTP transactions instead: object create, get, update, query and registration.")
    var transactions = false

    @Flag(help: "Measure failover instead: kill -9 a pair behind Adrestia and time the first update through the new pair.")
    var failover = false

    @Option(help: "With --failover: how many kills.")
    var runs = 10

    @Option(help: "With --transactions: concurrent clients.")
    var clients = 16

    @Option(help: "With no --url: the store of the server the benchmark starts (postgres://...); SQLite by default.")
    var store: String?

    @Option(help: "With no --url: the change stream of the server the benchmark starts (see aesel serve --stream).")
    var stream: String?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        guard scenes > 0, devices > 1, rate > 0, seconds > 0 else {
            throw ValidationError("need at least 1 scene, 2 devices per scene, and a positive rate and duration")
        }
    }

    func run() async throws {
        if stages {
            let measured = try StageBreakdown.measure(devicesPerScene: devices, format: format)
            print(json ? String(decoding: try JSONEncoder().encode(measured), as: UTF8.self) : StageBreakdown.table(measured))
            return
        }
        if failover {
            let result = try await FailoverBench(runs: runs).run()
            print(json ? String(decoding: try JSONEncoder().encode(result), as: UTF8.self) : FailoverBench.table(result))
            return
        }
        if transactions {
            let results = try await TransactionBench(url: url, store: store, clients: clients, seconds: seconds).run()
            print(json ? String(decoding: try JSONEncoder().encode(results), as: UTF8.self) : TransactionBench.table(results))
            return
        }
        let load = BenchLoad(scenes: scenes, devicesPerScene: devices, ratePerDevice: rate, seconds: seconds, warmupSeconds: warmup, format: format)
        let serverArguments = (store.map { ["--store", $0] } ?? []) + (stream.map { ["--stream", $0] } ?? [])
        let bench = Bench(options: .init(load: load, url: url, baseline: baseline, serverArguments: serverArguments, layout: layout))
        let results = findMax ? try await bench.findMaximumRate() : try await bench.run()
        print(json ? try BenchReport.json(results) : BenchReport.table(results))
    }
}

struct Routes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every HTTP route `aesel serve` answers (docs/openapi.yaml), or with --adrestia Adrestia's own (docs/adrestia.yaml)."
    )

    @Flag(help: "List Adrestia's own routes; it forwards every other /v1 call to a pair.")
    var adrestia = false

    func run() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("aesel-routes-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var logger = Logger(label: "aesel")
        logger.logLevel = .error
        let routes: [String]
        if adrestia {
            let server = AdrestiaServer(
                configuration: .init(host: "127.0.0.1", httpPort: 0, discovery: .embedded(adrestia: nil), cluster: .init()),
                registry: PrometheusCollectorRegistry(), logger: logger)
            routes = try await withStore(at: StoreLocation(url: nil, dataFolder: folder), logger: logger) { server.routes(store: $0) }
        } else {
            let server = PairServer(configuration: .init(httpPort: 0, udpPort: 0, dataFolder: folder), registry: PrometheusCollectorRegistry(), logger: logger)
            routes = try await server.routes()
        }
        for route in routes { print(route) }
    }
}

struct Relay: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The baseline relay `aesel bench --baseline` measures against.",
        shouldDisplay: false
    )

    @Option(help: "The UDP port (0 picks a free one).")
    var port: UInt16 = 0

    @Option(help: "A JSON file: {\"scenes\": {\"<scene>\": [{\"key\": \"<device>\", \"port\": N}]}}.")
    var routes: String

    func run() throws {
        let table = try JSONDecoder().decode(BaselineRelay.Routes.self, from: Data(contentsOf: URL(fileURLWithPath: routes)))
        try BaselineRelay.run(port: port, routes: table)
    }
}

extension EventFormat: ExpressibleByArgument {}
extension BenchLayout: ExpressibleByArgument {}

extension DiscoverySetting: ExpressibleByArgument {
    public init?(argument: String) {
        self.init(argument)
    }
}

extension StreamSetting: ExpressibleByArgument {
    public init?(argument: String) {
        self.init(argument)
    }
}
extension Logger.Level: @retroactive ExpressibleByArgument {}
