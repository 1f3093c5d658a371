import AeselLocalCluster
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Adrestia and its pairs, each a real process: `aesel adrestia` (one, or with etcd several instances,
/// named `adrestia-0`, `adrestia-1`, ...) and `aesel pair --region --pair-id --discovery`, on one shared
/// store.
package final class TestCluster: @unchecked Sendable {
    // @unchecked: `pairs` and `adrestia` change only from the test's own task.
    package enum Discovery {
        /// Adrestia's own registry over HTTP.
        case embedded
        /// The test etcd (`AESEL_TEST_ETCD`, started by scripts/test.sh).
        case etcd
        /// An etcd of the test's own, by its `etcd://` or `etcds://` URL.
        case etcdAt(String)
    }

    package enum Store {
        /// One SQLite file in a folder all processes share.
        case sqlite
        /// A fresh PostgreSQL database of the test's own.
        case postgres
        /// A store URL the test made (a PostgreSQL over TLS, say), which the test removes.
        case url(String)
    }

    package private(set) var adrestias: [TestServer] = []
    /// The first instance.
    package var adrestia: TestServer { adrestias[0] }
    package private(set) var pairs: [String: TestServer] = [:]
    private let pairArguments: [String]
    private let dataFolder = NSTemporaryDirectory() + "aesel-cluster-\(UUID().uuidString)"
    private let removeStore: @Sendable () async throws -> Void

    /// Starts Adrestia (`instances` of it: more than one needs etcd), then a pair for each `(id, region)`.
    /// - Parameter tls: every process serves HTTPS with these files and trusts their authority, so Adrestia
    ///   and the pairs reach each other (and an `etcds://` discovery) over TLS only.
    package init(
        discovery: Discovery, store: Store, pairs: [(id: String, region: String)], instances: Int = 1, adrestiaArguments: [String] = [],
        tls: TestCertificates? = nil
    ) async throws {
        var sharedArguments = tls?.serverArguments ?? []
        switch store {
        case .postgres:
            let (url, remove) = try await TestStore.postgresDatabase()
            sharedArguments += ["--store", url]
            removeStore = remove
        case .url(let url):
            sharedArguments += ["--store", url]
            removeStore = {}
        case .sqlite:
            removeStore = {}
        }
        let discoveryURL: String
        switch discovery {
        case .embedded:
            guard instances == 1 else { throw TestSetupError(description: "embedded discovery has one Adrestia") }
            adrestias = [try TestServer("adrestia", dataFolder: dataFolder, arguments: sharedArguments + adrestiaArguments)]
            discoveryURL = adrestias[0].url
        case .etcd, .etcdAt:
            var etcd = ProcessInfo.processInfo.environment["AESEL_TEST_ETCD"] ?? ""
            if case .etcdAt(let url) = discovery { etcd = url }
            guard !etcd.isEmpty else {
                throw TestSetupError(description: "AESEL_TEST_ETCD is not set: run scripts/test.sh, or start etcd with scripts/etcd.sh and export its address")
            }
            // A cluster of the test's own in the shared etcd.
            discoveryURL = "\(etcd)/test-\(UUID().uuidString.prefix(8).lowercased())"
            for index in 0..<instances {
                let arguments = sharedArguments + ["--discovery", discoveryURL, "--instance-id", "adrestia-\(index)"] + adrestiaArguments
                adrestias.append(try TestServer("adrestia", dataFolder: dataFolder, arguments: arguments))
            }
        }
        pairArguments = sharedArguments + ["--discovery", discoveryURL]
        for pair in pairs {
            try startPair(pair.id, region: pair.region)
        }
    }

    package func startPair(_ id: String, region: String) throws {
        pairs[id] = try TestServer("pair", dataFolder: dataFolder, arguments: pairArguments + ["--pair-id", id, "--region", region])
    }

    /// Kills a pair's process with `signal` (SIGKILL by default) without removing the shared data folder.
    package func kill(_ id: String, signal: Int32 = SIGKILL) {
        guard let pair = pairs[id] else { return }
        if signal == SIGKILL {
            pair.process.stop(signal: SIGKILL)
        } else {
            Glibc.kill(pair.process.pid, signal)
        }
    }

    /// Restarts an Adrestia instance with the same arguments (SIGTERM, then start).
    package func restartAdrestia(_ index: Int = 0) throws {
        try adrestias[index].restart()
    }

    /// Sends `signal` to an Adrestia instance; SIGKILL also waits for its end.
    package func signalAdrestia(_ index: Int, _ signal: Int32) {
        if signal == SIGKILL {
            adrestias[index].process.stop(signal: SIGKILL)
        } else {
            Glibc.kill(adrestias[index].process.pid, signal)
        }
    }

    /// `GET /v1/pairs` of an instance, whole.
    package func listing(through index: Int = 0) async throws -> [String: Any] {
        try await adrestias[index].request("GET", "/v1/pairs").json
    }

    /// `GET /v1/pairs`, by pair id.
    package func pairStatus(through index: Int = 0) async throws -> [String: [String: Any]] {
        let listed = try await listing(through: index)["pairs"] as? [[String: Any]] ?? []
        return Dictionary(listed.map { ($0["pair"] as? String ?? "", $0) }) { first, _ in first }
    }

    /// The index of the instance that says it leads, if exactly one of `among` does.
    package func leader(among indexes: [Int]? = nil) async -> Int? {
        var leading: [Int] = []
        for index in indexes ?? Array(adrestias.indices) {
            guard let listing = try? await listing(through: index) else { continue }
            let leader = (listing["leader"] as? [String: Any])?["instance"] as? String
            if leader != nil, leader == listing["instance"] as? String { leading.append(index) }
        }
        return leading.count == 1 ? leading[0] : nil
    }

    /// Waits until exactly `ids` are listed and healthy, by every instance in `through` (default: the first).
    package func waitUntilHealthy(_ ids: Set<String>, through indexes: [Int] = [0], timeout: Duration = .seconds(15)) async throws -> Bool {
        try await eventually(timeout: timeout) {
            for index in indexes {
                let status = try await pairStatus(through: index)
                guard Set(status.keys) == ids, ids.allSatisfy({ status[$0]?["healthy"] as? Bool == true }) else { return false }
            }
            return true
        }
    }

    /// `GET /v1/scene/{scene}/endpoint`: the scene's pair and its CLyman UDP port.
    package func endpoint(of scene: String, through index: Int = 0) async throws -> (pair: String, port: Int)? {
        let answer = try await adrestias[index].request("GET", "/v1/scene/\(scene)/endpoint")
        guard answer.status == 200, let pair = answer.json["pair"] as? String, let port = answer.json["event_destination_port"] as? Int else { return nil }
        return (pair, port)
    }

    /// Creates a scene of `region` through Adrestia.
    package func createScene(_ key: String, region: String) async throws {
        let created = try await adrestia.request("PUT", "/v1/scene/\(key)", body: #"{"scenes":[{"name":"\#(key)","region":"\#(region)"}]}"#)
        guard created.status == 200 else { throw TestSetupError(description: "scene \(key) not created: \(created.status)") }
    }

    /// Creates an object in `scene` through the gateway; returns its key.
    package func createObject(in scene: String) async throws -> String {
        let created = try await adrestia.request("POST", "/v1/scene/\(scene)/object", body: #"{"objects":[{"name":"thing"}]}"#)
        guard let key = (created.json["objects"] as? [[String: Any]])?.first?["key"] as? String else {
            throw TestSetupError(description: "no object created in \(scene): \(created.status)")
        }
        return key
    }

    /// Runs `body`, then stops every process and removes the store, also when `body` throws.
    package func whileRunning(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            await stop()
            throw error
        }
        await stop()
    }

    package func stop() async {
        for pair in pairs.values { pair.process.stop(signal: SIGKILL) }
        for instance in adrestias { instance.process.stop(signal: SIGKILL) }
        try? FileManager.default.removeItem(atPath: dataFolder)
        try? await removeStore()
    }
}
