import Adrestia
import AeselAuth
import AeselBench
import AeselClient
import AeselServer
import AeselHTTP
import AeselLocalCluster
import AeselModel
import ArgumentParser
import Configuration
import CrazyIvan
import Foundation
import Logging
import Metrics
import NIOCore
import Prometheus
import UnixSignals

@main
struct AeselCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aesel",
        abstract: "Aesel: a real-time back end that keeps 3D scenes in sync across devices.",
        version: aeselVersion,
        subcommands: [
            Serve.self, AdrestiaCommand.self, Pair.self, Clyman.self, CrazyIvanCommand.self, ClusterCommand.self, BenchCommand.self, Routes.self,
            TokenCommand.self, APIKeyCommand.self, SecretCommand.self, Relay.self,
        ]
    )
}

/// Options given on the command line, by configuration key (`--http-port` is `http.port`); what is not
/// given comes from `AESEL_*` variables, then the `--config` file, then the component's default.
struct Flags {
    private(set) var values: [AbsoluteConfigKey: ConfigValue] = [:]

    mutating func set(_ key: String, _ value: String?, isSecret: Bool = false) {
        put(key, value.map(ConfigContent.string), isSecret: isSecret)
    }

    mutating func set(_ key: String, _ value: Int?) {
        put(key, value.map(ConfigContent.int))
    }

    mutating func set(_ key: String, _ value: Double?) {
        put(key, value.map(ConfigContent.double))
    }

    /// A flag given only as `--name` (never `--no-name`), so absent means "not given".
    mutating func set(_ key: String, _ value: Bool) {
        put(key, value ? .bool(true) : nil)
    }

    private mutating func put(_ key: String, _ content: ConfigContent?, isSecret: Bool = false) {
        if let content { values[AbsoluteConfigKey(key.split(separator: ".").map(String.init))] = ConfigValue(content, isSecret: isSecret) }
    }

    func merging(_ other: Flags) -> Flags {
        var merged = self
        merged.values.merge(other.values) { _, new in new }
        return merged
    }
}

/// Where a server process listens.
struct ListenOptions: ParsableArguments {
    @Option(help: "The address to listen on: HTTP, and UDP events or health probes (default 127.0.0.1).")
    var host: String?

    @Option(help: "The HTTP port; 0 picks a free one (default 8080 for serve and adrestia, 8768 for pair and clyman, 8766 for crazyivan).")
    var httpPort: Int?

    func set(into flags: inout Flags) {
        flags.set("host", host)
        flags.set("http.port", httpPort)
    }
}

/// Where a server process keeps its data.
struct StoreOptions: ParsableArguments {
    @Option(help: "The data folder; the SQLite file lives here (default ./aesel-data).")
    var data: String?

    @Option(help: "A shared PostgreSQL store, postgres://user[:password]@host:port/database[?sslmode=require|verify-ca|verify-full&sslrootcert=PATH], instead of SQLite in the data folder. Visible in ps: prefer AESEL_STORE or --store-file.")
    var store: String?

    @Option(help: "A file holding the store URL.")
    var storeFile: String?

    func set(into flags: inout Flags) {
        flags.set("data", data)
        flags.set("store", store, isSecret: true)
        flags.set("store.file", storeFile)
    }
}

/// What every server process takes besides its own options.
struct CommonOptions: ParsableArguments {
    @Option(help: "A JSON file of options, keys nested by their dots: {\"http\": {\"port\": 8080}} (or AESEL_CONFIG).")
    var config: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical (default info).")
    var logLevel: String?

    @Option(help: "Seconds an HTTP connection may stay open between requests (default 60).")
    var httpIdleTimeout: Double?

    @Option(help: "Seconds from a request's first byte to the end of its head (default 10).")
    var httpHeaderTimeout: Double?

    @Option(help: "Seconds from the end of a request's head to the end of its body (default 30).")
    var httpBodyTimeout: Double?

    @Option(help: "The largest HTTP request body in bytes; a larger one is answered 413 (default 1048576).")
    var httpBodyLimit: Int?

    @Option(help: "The most HTTP connections open at once; one more is closed as soon as it is accepted (default 10000).")
    var httpMaxConnections: Int?

    @Option(help: "A PEM certificate (chain) for the HTTP listener, which then serves HTTPS only; needs --tls-key.")
    var tlsCertificate: String?

    @Option(help: "The PEM private key of --tls-certificate.")
    var tlsKey: String?

    @Option(help: "A PEM bundle of the certificate authorities this process's https:// calls and sslmode=verify-* PostgreSQL connections trust (default: the system's).")
    var tlsCa: String?

    @OptionGroup var auth: AuthOptions

    /// The reader over `flags` and these options, and the process's logger and metrics registry.
    func start(_ flags: Flags) async throws -> (ConfigReader, Logger, PrometheusCollectorRegistry) {
        var flags = flags
        flags.set("log.level", logLevel)
        flags.set("http.idle.timeout", httpIdleTimeout)
        flags.set("http.header.timeout", httpHeaderTimeout)
        flags.set("http.body.timeout", httpBodyTimeout)
        flags.set("http.body.limit", httpBodyLimit)
        flags.set("http.max.connections", httpMaxConnections)
        flags.set("tls.certificate", tlsCertificate)
        flags.set("tls.key", tlsKey)
        flags.set("tls.ca", tlsCa)
        auth.set(into: &flags)
        let reader = try await ConfigurationSources.reader(flags: flags.values, file: config)
        let levelName = reader.string(forKey: "log.level", default: "info")
        guard let level = Logger.Level(rawValue: levelName) else {
            throw ConfigurationError(key: "log.level", reason: "\(levelName) is not trace, debug, info, notice, warning, error or critical")
        }
        var logger = Logger(label: "aesel")
        logger.logLevel = level
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[FanOutMetrics.relayLabel] = FanOutMetrics.relayBuckets
        MetricsSystem.bootstrap(factory)
        return (reader, logger, registry)
    }
}

/// Who may call a server process (docs/security.md, Authenticated transactions and Protected mode).
struct AuthOptions: ParsableArguments {
    @Option(help: "A file holding the secret bearer tokens are signed with (HS256; `aesel secret` makes one; or AESEL_AUTH_TOKEN_SECRET). With it, or with --api-keys-file, every HTTP call needs a credential.")
    var tokenSecretFile: String?

    @Option(help: "The API keys file (`aesel api-key` adds to it): each key's SHA-256, role and scenes.")
    var apiKeysFile: String?

    @Option(help: "A file holding the cluster's secret (or AESEL_CLUSTER_SECRET), the same in every process of the cluster: the cluster's own calls carry it.")
    var clusterSecretFile: String?

    @Flag(help: "Answer /metrics without credentials.")
    var metricsOpen = false

    @Flag(help: "Start although protected mode finds credentials, the cluster secret or sealed events missing (logged as a warning).")
    var insecure = false

    func set(into flags: inout Flags) {
        flags.set("auth.token.secret.file", tokenSecretFile)
        flags.set("auth.api.keys.file", apiKeysFile)
        flags.set("cluster.secret.file", clusterSecretFile)
        flags.set("metrics.open", metricsOpen)
        flags.set("insecure", insecure)
    }
}

/// The options every pair process takes.
struct ServerOptions: ParsableArguments {
    @OptionGroup var listen: ListenOptions

    @Option(help: "The UDP port devices send events to; 0 picks a free one (default 8762). Only one server may listen on it.")
    var udpPort: Int?

    @Option(help: "The address devices send events to, in registration answers (event_destination_host) and a pair's announcement. Default: --host, or with a wildcard --host such as 0.0.0.0 the address each request came in on.")
    var advertiseHost: String?

    @OptionGroup var storage: StoreOptions

    @Option(help: "The change stream between CLyman and CrazyIvan: memory (default), zmq+inproc://NAME, zmq+ipc:///PATH, zmq+tcp://HOST:PORT, kafka://HOST:PORT/TOPIC or udp://HOST:PORT.")
    var stream: String?

    @Flag(help: "Also send each event back to the device that sent it, as the original did.")
    var echoToSender = false

    @Option(help: "Milliseconds between writes of event transforms to the store (write-behind; default 200). Reads see new transforms at once.")
    var persistInterval: Int?

    @Option(help: "sealed: each device's events sealed with its session key (docs/protocol.md); plaintext: the original's events. Default sealed, but plaintext for serve on a loopback address.")
    var eventSecurity: String?

    @Option(help: "Events a second each device may send over UDP; more are dropped as rate_limited (default 2000; 0: no limit).")
    var eventRate: Int?

    @Option(help: "The burst each device may send above --event-rate (default 500).")
    var eventBurst: Int?

    @OptionGroup var common: CommonOptions

    var flags: Flags {
        var flags = Flags()
        listen.set(into: &flags)
        flags.set("udp.port", udpPort)
        flags.set("advertise.host", advertiseHost)
        storage.set(into: &flags)
        flags.set("stream", stream)
        flags.set("echo.to.sender", echoToSender)
        flags.set("persist.interval", persistInterval)
        flags.set("event.security", eventSecurity)
        flags.set("event.rate", eventRate)
        flags.set("event.burst", eventBurst)
        return flags
    }

    /// Runs the server in `role` until SIGINT or SIGTERM.
    func run(_ role: PairServer.Role, extra: Flags = Flags()) async throws {
        let flags = self.flags.merging(extra)
        let (reader, logger, registry) = try await common.start(flags)
        var configuration = try PairServer.Configuration(role: role, reader: reader)
        configuration.access = try await AccessControl.load(reader: reader)
        try ProtectedMode.check(
            .init(
                command: role == .all ? "serve" : role.rawValue, host: configuration.host, inCluster: role == .pair,
                eventsSealed: configuration.eventSecurity == .sealed, mayRunOpenOnLoopback: role == .all),
            access: configuration.access, logger: logger)
        let server = PairServer(configuration: configuration, registry: registry, logger: logger)
        if configuration.eventSecurity == .plaintext {
            logger.notice("events are plaintext: anyone who reaches the UDP port can send as any device (--event-security sealed)")
        }
        let host = configuration.host
        try await server.run { endpoints in
            var fields = ["http": "\(endpoints.http.ipAddress ?? host):\(endpoints.http.port ?? 0)"]
            if let udp = endpoints.udp { fields["udp"] = "\(udp.ipAddress ?? host):\(udp.port ?? 0)" }
            ReadyLine.print(fields)
        }
    }
}

/// The Scene-Device cache's options, on the roles that run CrazyIvan.
struct CacheOptions: ParsableArguments {
    @Option(help: "Seconds a scene's device list lives in the cache from its load; the next event after that reloads it (default 300).")
    var cacheTtl: Int?

    @Option(help: "Milliseconds between background refreshes of the cached device lists from the store (default 2000).")
    var cacheRefreshInterval: Int?

    @Flag(help: "While a scene loads into the cache, send its events at once to the devices known so far instead of holding them until the load ends.")
    var forwardWhileLoading = false

    @Option(help: "The pair's region: its scenes are loaded at start and never expire from the cache; with --discovery, also the region whose scenes Adrestia assigns to the pair (default there \"default\").")
    var region: String?

    var flags: Flags {
        var flags = Flags()
        flags.set("cache.ttl", cacheTtl)
        flags.set("cache.refresh.interval", cacheRefreshInterval)
        flags.set("forward.while.loading", forwardWhileLoading)
        flags.set("region", region)
        return flags
    }
}

/// A command that runs one pair role with the common server options.
protocol PairRoleCommand: AsyncParsableCommand {
    static var role: PairServer.Role { get }
    var options: ServerOptions { get }
    /// The options of this role beyond the common ones.
    var roleFlags: Flags { get }
}

extension PairRoleCommand {
    static func describe(_ abstract: String) -> CommandConfiguration {
        CommandConfiguration(commandName: role.rawValue == "all" ? "serve" : role.rawValue, abstract: abstract)
    }

    var roleFlags: Flags { Flags() }

    func run() async throws {
        try await options.run(Self.role, extra: roleFlags)
    }
}

struct Serve: PairRoleCommand {
    static let configuration = describe("Run the gateway and one CLyman/CrazyIvan pair in one process, on an embedded SQLite store.")
    static let role = PairServer.Role.all
    @OptionGroup var options: ServerOptions
    @OptionGroup var cache: CacheOptions
    var roleFlags: Flags { cache.flags }
}

struct Pair: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one CLyman and one CrazyIvan in one process; with --discovery, as a pair behind Adrestia."
    )

    @OptionGroup var options: ServerOptions

    @OptionGroup var cache: CacheOptions

    @Option(help: "Where the pair announces itself: Adrestia's base URL (embedded discovery) or etcd://HOST:PORT[/CLUSTER] (etcds:// for etcd over TLS). A wildcard --host then needs --advertise-host.")
    var discovery: String?

    @Option(help: "With --discovery: the pair's id, unique in the cluster and the same across restarts.")
    var pairId: String?

    func run() async throws {
        var flags = cache.flags
        flags.set("discovery", discovery)
        flags.set("pair.id", pairId)
        try await options.run(.pair, extra: flags)
    }
}

struct AdrestiaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adrestia",
        abstract: "Run the gateway and cluster manager alone: pairs announce themselves, Adrestia health-checks them, assigns scenes and fails over."
    )

    @OptionGroup var listen: ListenOptions

    @Option(help: "The address pairs send health probes back to, when --host is a wildcard such as 0.0.0.0.")
    var advertiseHost: String?

    @OptionGroup var storage: StoreOptions

    @Option(help: "Discovery: embedded (default: pairs announce to this process) or etcd://HOST:PORT[/CLUSTER] (pairs under /CLUSTER/pairs/, default aesel; etcds:// for etcd over TLS).")
    var discovery: String?

    @Option(help: "Milliseconds between health probes of each pair (default 50).")
    var probeInterval: Int?

    @Option(help: "Missed probes (or failed HTTP checks) in a row after which a pair is down (default 3).")
    var misses: Int?

    @Flag(help: "Let a scene move to a pair of another region when its own region has no healthy pair.")
    var crossRegionFailover = false

    @Option(help: "This instance's name in the leader election (default: its advertised host:port). Keep it across restarts.")
    var instanceId: String?

    @Option(help: "With etcd: milliseconds the leader's key may stay unrenewed before another instance leads (default 500).")
    var leaderTimeout: Int?

    @OptionGroup var common: CommonOptions

    func run() async throws {
        var flags = Flags()
        listen.set(into: &flags)
        flags.set("advertise.host", advertiseHost)
        storage.set(into: &flags)
        flags.set("discovery", discovery)
        flags.set("probe.interval", probeInterval)
        flags.set("misses", misses)
        flags.set("cross.region.failover", crossRegionFailover)
        flags.set("instance.id", instanceId)
        flags.set("leader.timeout", leaderTimeout)
        let (reader, logger, registry) = try await common.start(flags)
        var configuration = try AdrestiaServer.Configuration(reader: reader)
        configuration.access = try await AccessControl.load(reader: reader)
        try ProtectedMode.check(
            .init(command: "adrestia", host: configuration.host, inCluster: true, eventsSealed: nil, mayRunOpenOnLoopback: false),
            access: configuration.access, logger: logger)
        let server = AdrestiaServer(configuration: configuration, registry: registry, logger: logger)
        let host = configuration.host
        try await withStore(at: try StoreLocation(reader: reader), logger: logger) { store in
            try await server.run(store: store) { http in
                ReadyLine.print(["http": "\(http.ipAddress ?? host):\(http.port ?? 0)"])
            }
        }
    }
}

struct Clyman: PairRoleCommand {
    static let configuration = describe("Run CLyman alone: UDP event ingest and the object and property API, publishing to a ZeroMQ stream.")
    static let role = PairServer.Role.clyman
    @OptionGroup var options: ServerOptions
}

struct CrazyIvanCommand: PairRoleCommand {
    static let configuration = describe("Run CrazyIvan alone: the scene and registration API and the UDP fan-out, subscribed to a ZeroMQ stream.")
    static let role = PairServer.Role.crazyIvan
    @OptionGroup var options: ServerOptions
    @OptionGroup var cache: CacheOptions
    var roleFlags: Flags { cache.flags }
}

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Run a whole cluster on this machine, for demos and tests: etcd, PostgreSQL, Adrestia instances and pairs in several regions on free loopback ports, until SIGINT or SIGTERM stops it all."
    )

    @Option(help: "How many Adrestia instances run, on one etcd and one store (default 2).")
    var adrestia: Int?

    @Option(help: "The regions and how many pairs each runs: REGION=COUNT separated by commas (default east=2,west=1).")
    var pairs: String?

    @Option(help: "A JSON file of options, keys nested by their dots: {\"cluster\": {\"adrestia\": 3}} (or AESEL_CONFIG).")
    var config: String?

    @Option(help: "The log level of every process of the cluster, on standard error (default warning).")
    var logLevel: String?

    func run() async throws {
        var flags = Flags()
        flags.set("cluster.adrestia", adrestia)
        flags.set("cluster.pairs", pairs)
        flags.set("log.level", logLevel)
        let reader = try await ConfigurationSources.reader(flags: flags.values, file: config)
        let cluster = LocalCluster(configuration: try LocalCluster.Configuration(reader: reader))
        // Trapped before anything starts, so that a signal while it starts stops what has started.
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let stopped = Task {
            for await _ in signals { break }
            cluster.stop()
        }
        do {
            try await cluster.start()
        } catch is CancellationError {
            return await stopped.value  // a signal came first
        } catch {
            stopped.cancel()
            throw error
        }
        // Unbuffered, and in order with the ready line.
        FileHandle.standardOutput.write(Data("Aesel cluster on 127.0.0.1, files in \(cluster.folder); Ctrl-C stops it all.\n\n\(cluster.table)\n\n".utf8))
        ReadyLine.print([
            "adrestia": cluster.adrestiaURLs.joined(separator: ","), "etcd": cluster.etcdURL, "store": cluster.storeURL,
            "pairs": cluster.pairs.map(\.id).joined(separator: ","), "files": cluster.folder, "admin_key_file": cluster.adminKeyFile,
        ])
        await stopped.value
    }
}

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the event path end to end with simulated devices on loopback."
    )

    @Option(help: "A running server's base URL, e.g. http://127.0.0.1:8080. Without it, the benchmark starts one.")
    var url: String?

    @Option(help: "With --url: a file holding a bearer token (aesel token) for the server's HTTP API.")
    var tokenFile: String?

    @Option(help: "With --url: a file holding an API key (aesel api-key) for the server's HTTP API.")
    var apiKeyFile: String?

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

    @Flag(help: "Also run the same load through the baseline relays: a plain recvfrom/sendto loop, one batched with recvmmsg/sendmmsg, and with a zmq+ipc or zmq+tcp --stream one joined by libzmq over it.")
    var baseline = false

    @Flag(help: "Search for the highest input rate with at most 0.1% loss, starting from --rate.")
    var findMax = false

    @Flag(help: "Time each stage of one event's path on its own (decode, lookup, encode, kernel sends; with --event-security sealed, opening and sealing) instead.")
    var stages = false

    @Option(help: "With no --url: serve (one process) or split (aesel clyman and aesel crazyivan; needs a ZeroMQ or Kafka --stream).")
    var layout: BenchLayout = .serve

    @Flag(help: "Measure HTTP transactions instead: object create, get, update, query and registration.")
    var transactions = false

    @Flag(help: "Measure failover instead: kill -9 a pair behind Adrestia and time the first update through the new pair.")
    var failover = false

    @Flag(help: "Measure the loss of the leading Adrestia instead (etcd, PostgreSQL, two instances, two pairs): kill -9 it and time its successor's first probe round, then a pair killed 100 ms after it.")
    var leaderLoss = false

    @Option(help: "With --failover or --leader-loss: how many kills.")
    var runs = 10

    @Option(help: "With --transactions: concurrent clients.")
    var clients = 16

    @Option(help: "With no --url: the store of the server the benchmark starts (postgres://...); SQLite by default.")
    var store: String?

    @Option(help: "With no --url: the change stream of the server the benchmark starts (see aesel serve --stream).")
    var stream: String?

    @Option(help: "With no --url: run one server per value, side by side, e.g. sealed,plaintext (see aesel serve --event-security).")
    var eventSecurity: String?

    @Option(help: "Repeat the measurement (or --find-max's search) this many times, the targets taking turns in each round, and report the rounds merged with each round's ratios.")
    var rounds = 1

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        guard scenes > 0, devices > 1, rate > 0, seconds > 0, rounds > 0 else {
            throw ValidationError("need at least 1 scene, 2 devices per scene, one round, and a positive rate and duration")
        }
        if tokenFile != nil || apiKeyFile != nil {
            guard url != nil else { throw ValidationError("--token-file and --api-key-file are for a server given by --url") }
            guard tokenFile == nil || apiKeyFile == nil else { throw ValidationError("give --token-file or --api-key-file, not both") }
        }
    }

    /// The credential in --token-file or --api-key-file, without surrounding whitespace.
    private func credential() throws -> AeselCredential? {
        func read(_ path: String) throws -> String {
            try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if let tokenFile { return .bearerToken(try read(tokenFile)) }
        if let apiKeyFile { return .apiKey(try read(apiKeyFile)) }
        return nil
    }

    func run() async throws {
        if stages {
            let sealed = eventSecurity?.split(separator: ",").contains("sealed") ?? false
            let measured = try StageBreakdown.measure(devicesPerScene: devices, format: format, sealed: sealed)
            print(json ? String(decoding: try JSONEncoder().encode(measured), as: UTF8.self) : StageBreakdown.table(measured))
            return
        }
        if failover {
            let result = try await FailoverBench(runs: runs).run()
            print(json ? String(decoding: try JSONEncoder().encode(result), as: UTF8.self) : FailoverBench.table(result))
            return
        }
        if leaderLoss {
            let result = try await LeaderLossBench(runs: runs).run()
            print(json ? String(decoding: try JSONEncoder().encode(result), as: UTF8.self) : LeaderLossBench.table(result))
            return
        }
        if transactions {
            let results = try await TransactionBench(url: url, credential: try credential(), store: store, clients: clients, seconds: seconds).run()
            print(json ? String(decoding: try JSONEncoder().encode(results), as: UTF8.self) : TransactionBench.table(results))
            return
        }
        let load = BenchLoad(scenes: scenes, devicesPerScene: devices, ratePerDevice: rate, seconds: seconds, warmupSeconds: warmup, format: format)
        let serverArguments = (store.map { ["--store", $0] } ?? []) + (stream.map { ["--stream", $0] } ?? [])
        let securities = eventSecurity.map { $0.split(separator: ",").map(String.init) } ?? []
        let bench = Bench(
            options: .init(load: load, url: url, credential: try credential(), baseline: baseline, serverArguments: serverArguments, layout: layout, eventSecurities: securities,
                rounds: rounds))
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

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Issue a bearer token (a JWT signed with the token secret) and print it."
    )

    @Option(help: "admin (everything), application (only its --scene grants) or cluster.")
    var role: Role

    @Option(help: "A scene the application may reach: a key, or PREFIX* for every key starting with PREFIX. Repeatable.")
    var scene: [String] = []

    @Option(help: "How long the token is valid: seconds, or a number with s, m, h or d (default 24h).")
    var expires = "24h"

    @Option(help: "Who the token is for, its sub claim (default the role).")
    var subject: String?

    @Option(help: "The file holding the token secret (or AESEL_AUTH_TOKEN_SECRET).")
    var tokenSecretFile: String?

    @Option(help: "A JSON file of options, as the servers take (or AESEL_CONFIG).")
    var config: String?

    func validate() throws {
        guard role == .application || scene.isEmpty else { throw ValidationError("--scene is for application tokens: admin and cluster reach every scene") }
        guard role != .application || !scene.isEmpty else { throw ValidationError("an application token needs at least one --scene") }
        guard Self.seconds(expires) != nil else { throw ValidationError("--expires \(expires) is not seconds or a number with s, m, h or d") }
    }

    func run() async throws {
        var flags = Flags()
        flags.set("auth.token.secret.file", tokenSecretFile)
        let reader = try await ConfigurationSources.reader(flags: flags.values, file: config)
        guard let tokens = try await AccessControl.load(reader: reader).tokens else {
            throw ValidationError("no token secret: give --token-secret-file (or AESEL_AUTH_TOKEN_SECRET)")
        }
        let claims = AccessTokenClaims(
            subject: subject ?? role.rawValue, expires: Date(timeIntervalSinceNow: TimeInterval(Self.seconds(expires)!)), role: role, scenes: scene)
        print(try await tokens.issue(claims))
    }

    /// `90`, `90s`, `15m`, `12h`, `30d` in seconds.
    static func seconds(_ text: String) -> Int? {
        let units = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        let unit = text.last.flatMap { units[String($0)] }
        guard let value = Int(unit == nil ? text : String(text.dropLast())), value > 0 else { return nil }
        return value * (unit ?? 1)
    }
}

struct APIKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api-key",
        abstract: "Make an API key: print it once, and add its SHA-256 (never the key) with its role and scenes to the keys file."
    )

    @Option(help: "A name for the key, unique in the file (it appears in logs, the key never does).")
    var name: String

    @Option(help: "admin, application (only its --scene grants) or cluster.")
    var role: Role

    @Option(help: "A scene the application may reach: a key, or PREFIX* for every key starting with PREFIX. Repeatable.")
    var scene: [String] = []

    @Option(help: "The API keys file the servers read (--api-keys-file); made if missing.")
    var apiKeysFile: String

    func validate() throws {
        guard role == .application || scene.isEmpty else { throw ValidationError("--scene is for application keys: admin and cluster reach every scene") }
        guard role != .application || !scene.isEmpty else { throw ValidationError("an application key needs at least one --scene") }
    }

    func run() throws {
        let key = APIKeyTable.generateKey()
        try APIKeyTable.append(APIKeyEntry(name: name, key: key, role: role, scenes: scene), toFileAt: apiKeysFile)
        print(key)
    }
}

struct SecretCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secret",
        abstract: "Print a fresh random secret (32 bytes, base64url) for --token-secret-file or --cluster-secret-file."
    )

    func run() {
        print(Secret.generate())
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

    @Option(help: "plain (recvfrom, sendto), batched (recvmmsg, one sendmmsg per batch), zmq+ipc or zmq+tcp (two threads joined by libzmq).")
    var mode = "plain"

    func run() throws {
        let table = try JSONDecoder().decode(BaselineRelay.Routes.self, from: Data(contentsOf: URL(fileURLWithPath: routes)))
        guard let relayMode = BaselineRelay.Mode(name: mode) else { throw ValidationError("unknown --mode \(mode)") }
        try BaselineRelay.run(port: port, routes: table, mode: relayMode)
    }
}

extension EventFormat: ExpressibleByArgument {}
extension Role: ExpressibleByArgument {}
extension BenchLayout: ExpressibleByArgument {}
