import AeselAuth
import AeselModel
import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole cluster on this machine, each part a child process on free loopback ports: etcd, PostgreSQL,
/// several `aesel adrestia` instances on one etcd cluster and one store, and pairs (`aesel pair`) in
/// several regions. `aesel cluster` runs one for demos and first looks; every child dies with this process.
///
/// ```swift
/// let cluster = LocalCluster(configuration: .init())
/// try await cluster.start()  // returns once every Adrestia lists every pair healthy
/// print(cluster.adrestiaURLs)
/// cluster.stop()
/// ```
public final class LocalCluster: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// How many pairs run in one region.
        public struct Region: Sendable, Equatable {
            public var name: String
            public var pairs: Int

            public init(_ name: String, pairs: Int) {
                self.name = name
                self.pairs = pairs
            }
        }

        /// Adrestia instances.
        public var adrestia: Int
        /// The regions and their pairs, named `REGION-1`, `REGION-2`, ….
        public var regions: [Region]
        /// The children's `--log-level`.
        public var logLevel: String
        /// The `aesel` executable the Adrestia instances and pairs run.
        public var executable: String

        public init(
            adrestia: Int = 2, regions: [Region] = [.init("east", pairs: 2), .init("west", pairs: 1)], logLevel: String = "warning",
            executable: String = ServerProcess.aeselExecutable()
        ) {
            self.adrestia = adrestia
            self.regions = regions
            self.logLevel = logLevel
            self.executable = executable
        }
    }

    /// Where one pair listens. Its CLyman and CrazyIvan share one process and one HTTP port.
    public struct Pair: Sendable, Equatable {
        public var id: String
        public var region: String
        /// CLyman's UDP event port, `127.0.0.1:PORT`.
        public var udp: String
        /// The HTTP base URL of CLyman and CrazyIvan.
        public var http: String
    }

    private enum Child {
        case etcd(EtcdProcess)
        case postgres(PostgresProcess)
        case server(ServerProcess)
    }

    private struct State {
        var stopped = false
        /// In the order they started.
        var children: [Child] = []
        var etcdURL = ""
        var storeURL = ""
        var adrestiaURLs: [String] = []
        var pairs: [Pair] = []
        var leader: String?
        var adminKey = ""
    }

    public let configuration: Configuration
    /// The folder of every child's files, removed by ``stop()``.
    public let folder = NSTemporaryDirectory() + "aesel-cluster-\(UUID().uuidString.prefix(8).lowercased())"
    private let state = NIOLockedValueBox(State())

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// `etcd://127.0.0.1:PORT`.
    public var etcdURL: String { state.withLockedValue { $0.etcdURL } }
    /// The shared store, `postgres://postgres@127.0.0.1:PORT/postgres`.
    public var storeURL: String { state.withLockedValue { $0.storeURL } }
    /// The discovery URL every process of the cluster is given.
    public var discoveryURL: String { etcdURL + "/aesel" }
    /// Each Adrestia's base URL, `http://127.0.0.1:PORT`.
    public var adrestiaURLs: [String] { state.withLockedValue { $0.adrestiaURLs } }
    public var pairs: [Pair] { state.withLockedValue { $0.pairs } }
    /// The cluster's credentials: its token secret, cluster secret and API keys files, and the admin key.
    public var credentialsFolder: String { folder + "/credentials" }
    /// A file holding an admin API key of the cluster (`X-API-Key`, or `Authorization: Bearer`).
    public var adminKeyFile: String { credentialsFolder + "/admin.key" }
    /// The file holding the token secret, for `aesel token --token-secret-file`.
    public var tokenSecretFile: String { credentialsFolder + "/token.secret" }
    /// The instance id (`adrestia-N`) of the Adrestia that led when ``start()`` returned.
    public var leader: String? { state.withLockedValue { $0.leader } }

    /// Starts etcd, PostgreSQL, the Adrestia instances and the pairs, in that order, and waits until every
    /// Adrestia lists every pair healthy and names the same leader. On failure, or when ``stop()`` is called meanwhile, it stops what
    /// it started and throws.
    /// - Throws: `LocalClusterError` (`missingProgram` without etcd or PostgreSQL), or `CancellationError`
    ///   after ``stop()``.
    public func start(timeout: Duration = .seconds(120)) async throws {
        do {
            try await startChildren(timeout: timeout)
        } catch {
            // A child that was starting when stop() came fails in its own way: the cause is the stop.
            let stoppedMeanwhile = state.withLockedValue { $0.stopped }
            stop()
            throw stoppedMeanwhile ? CancellationError() : error
        }
    }

    private func startChildren(timeout: Duration) async throws {
        let etcd = try await EtcdProcess(folder: folder + "/etcd")
        try adopt(.etcd(etcd)) { $0.etcdURL = etcd.url }
        let postgres = try await PostgresProcess(folder: folder + "/postgres")
        try adopt(.postgres(postgres)) { $0.storeURL = postgres.url }
        let credentials = try makeCredentials()
        let shared = ["--discovery", discoveryURL, "--store", postgres.url, "--log-level", configuration.logLevel] + credentials
        // One at a time, so that the first Adrestia has migrated the store before any other opens it.
        for index in 1...max(configuration.adrestia, 1) {
            let adrestia = try ServerProcess(
                executable: configuration.executable,
                arguments: ["adrestia", "--instance-id", "adrestia-\(index)", "--http-port", "0", "--data", "\(folder)/adrestia-\(index)"] + shared)
            try adopt(.server(adrestia)) { $0.adrestiaURLs.append("http://" + (adrestia.endpoints["http"] ?? "")) }
        }
        for region in configuration.regions {
            for index in 1...max(region.pairs, 1) {
                let id = "\(region.name)-\(index)"
                let pair = try ServerProcess(
                    executable: configuration.executable,
                    arguments: ["pair", "--pair-id", id, "--region", region.name, "--http-port", "0", "--udp-port", "0", "--data", "\(folder)/\(id)"] + shared)
                let endpoints = Pair(id: id, region: region.name, udp: pair.endpoints["udp"] ?? "", http: "http://" + (pair.endpoints["http"] ?? ""))
                try adopt(.server(pair)) { $0.pairs.append(endpoints) }
            }
        }
        try await waitUntilEveryPairIsHealthy(timeout: timeout)
    }

    /// Writes a fresh token secret, cluster secret and API keys file (with one admin key) to
    /// ``credentialsFolder``, readable by this user only; returns the options that give them to a child.
    private func makeCredentials() throws -> [String] {
        try FileManager.default.createDirectory(atPath: credentialsFolder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let clusterSecretFile = credentialsFolder + "/cluster.secret"
        let apiKeysFile = credentialsFolder + "/api-keys.json"
        let adminKey = APIKeyTable.generateKey()
        for (path, contents) in [(tokenSecretFile, Secret.generate()), (clusterSecretFile, Secret.generate()), (adminKeyFile, adminKey)] {
            guard FileManager.default.createFile(atPath: path, contents: Data(contents.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw LocalClusterError(.startFailed, "cannot write \(path)")
            }
        }
        try APIKeyTable.append(APIKeyEntry(name: "local-admin", key: adminKey, role: .admin), toFileAt: apiKeysFile)
        state.withLockedValue { $0.adminKey = adminKey }
        return ["--token-secret-file", tokenSecretFile, "--api-keys-file", apiKeysFile, "--cluster-secret-file", clusterSecretFile]
    }

    /// Records a started child, or stops it at once when ``stop()`` came first.
    private func adopt(_ child: Child, _ record: (inout State) -> Void) throws {
        let adopted = state.withLockedValue { state in
            guard !state.stopped else { return false }
            state.children.append(child)
            record(&state)
            return true
        }
        guard adopted else {
            Self.stop([child])
            throw CancellationError()
        }
    }

    private func waitUntilEveryPairIsHealthy(timeout: Duration) async throws {
        let expected = Set(pairs.map(\.id))
        let deadline = ContinuousClock.now + timeout
        while true {
            var views: [View?] = []
            let adminKey = state.withLockedValue { $0.adminKey }
            for adrestia in adrestiaURLs { views.append(await Self.view(of: adrestia, adminKey: adminKey)) }
            let leaders = Set(views.map { $0?.leader })
            if views.allSatisfy({ $0?.healthy == expected }), leaders.count == 1, let leader = leaders.first ?? nil {
                state.withLockedValue { $0.leader = leader }
                return
            }
            guard !state.withLockedValue({ $0.stopped }) else { throw CancellationError() }
            guard ContinuousClock.now < deadline else {
                throw LocalClusterError(
                    .startFailed, "the Adrestia instances did not all list every pair (\(expected.sorted().joined(separator: ", "))) healthy under one leader in time")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// What one Adrestia's `GET /v1/pairs` says.
    private struct View {
        /// The ids of the pairs listed healthy.
        var healthy: Set<String>
        /// The leader's instance id, if there is one.
        var leader: String?
    }

    /// nil when Adrestia does not answer.
    private static func view(of adrestia: String, adminKey: String) async -> View? {
        var request = HTTPClientRequest(url: adrestia + "/v1/pairs")
        request.headers.add(name: AccessControl.apiKeyHeaderName, value: adminKey)
        guard let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(2)),
            let body = try? await response.body.collect(upTo: 1 << 20),
            let json = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
            let pairs = json["pairs"] as? [[String: Any]]
        else { return nil }
        return View(
            healthy: Set(pairs.filter { $0["healthy"] as? Bool == true }.compactMap { $0["pair"] as? String }),
            leader: (json["leader"] as? [String: Any])?["instance"] as? String)
    }

    /// Stops every child, pairs and Adrestia instances first (SIGTERM, so that each shuts down
    /// gracefully while the store and etcd still run), then PostgreSQL and etcd, and removes ``folder``.
    /// Safe to call more than once and while ``start()`` runs, which then stops what it starts after.
    public func stop() {
        let children = state.withLockedValue { state in
            state.stopped = true
            defer { state.children = [] }
            return state.children
        }
        Self.stop(children)
        try? FileManager.default.removeItem(atPath: folder)
    }

    private static func stop(_ children: [Child]) {
        let servers = children.compactMap { if case .server(let server) = $0 { server } else { nil } }
        // All at once, then wait for each: a graceful stop takes a moment.
        for server in servers where server.process.isRunning { kill(server.pid, SIGTERM) }
        for server in servers { ChildLauncher.waitForExit(server.process, timeout: .seconds(10)) }
        for child in children.reversed() {
            switch child {
            case .postgres(let postgres): postgres.stop()
            case .etcd(let etcd): etcd.stop()
            case .server: break
            }
        }
    }

    /// What runs where, as two tables for people: the services, then the pairs.
    public var table: String {
        let services =
            [["etcd", etcdURL], ["PostgreSQL", storeURL]]
            + adrestiaURLs.enumerated().map { index, url in
                let id = "adrestia-\(index + 1)"
                return [id, url + (id == leader ? "  (leader)" : "")]
            }
        // One process holds a pair's CLyman and CrazyIvan, so both answer on one HTTP port.
        let pairRows = [["pair", "region", "CLyman UDP", "CLyman HTTP", "CrazyIvan HTTP"]] + pairs.map { [$0.id, $0.region, $0.udp, $0.http, $0.http] }
        let credentials = [
            "Every call needs a credential: the admin API key is in \(adminKeyFile) (send it as X-API-Key);",
            "application tokens: aesel token --token-secret-file \(tokenSecretFile) --role application --scene SCENE",
        ]
        return (Self.columns(services) + [""] + Self.columns(pairRows) + [""] + credentials).joined(separator: "\n")
    }

    /// `rows` with each column padded to its widest cell.
    private static func columns(_ rows: [[String]]) -> [String] {
        let widths = rows.reduce(into: [Int]()) { widths, row in
            for (column, cell) in row.enumerated() {
                if column == widths.count { widths.append(0) }
                widths[column] = max(widths[column], cell.count)
            }
        }
        return rows.map { row in
            row.enumerated().map { $0.offset == row.count - 1 ? $0.element : $0.element.padding(toLength: widths[$0.offset] + 2, withPad: " ", startingAt: 0) }
                .joined()
        }
    }
}
