import AeselBench
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Adrestia and its pairs, each a real process: `aesel adrestia` and `aesel pair --region --pair-id
/// --discovery`, on one shared store.
final class TestCluster: @unchecked Sendable {
    // @unchecked: `pairs` and `adrestia` change only from the test's own task.
    enum Discovery {
        /// Adrestia's own registry over HTTP.
        case embedded
        /// The test etcd (`AESEL_TEST_ETCD`, started by scripts/test.sh).
        case etcd
    }

    enum Store {
        /// One SQLite file in a folder all processes share.
        case sqlite
        /// A fresh PostgreSQL database of the test's own.
        case postgres
    }

    private(set) var adrestia: TestServer
    private(set) var pairs: [String: TestServer] = [:]
    private let pairArguments: [String]
    private let dataFolder = NSTemporaryDirectory() + "aesel-cluster-\(UUID().uuidString)"
    private let removeStore: @Sendable () async throws -> Void

    /// Starts Adrestia, then a pair for each `(id, region)`.
    init(discovery: Discovery, store: Store, pairs: [(id: String, region: String)], adrestiaArguments: [String] = []) async throws {
        var storeArguments: [String] = []
        if store == .postgres {
            let (url, remove) = try await StoreLocation.postgresDatabase()
            storeArguments = ["--store", url]
            removeStore = remove
        } else {
            removeStore = {}
        }
        let discoveryURL: String
        switch discovery {
        case .embedded:
            adrestia = try TestServer("adrestia", dataFolder: dataFolder, arguments: storeArguments + adrestiaArguments)
            discoveryURL = adrestia.url
        case .etcd:
            guard let etcd = ProcessInfo.processInfo.environment["AESEL_TEST_ETCD"], !etcd.isEmpty else {
                throw StoreSetupError(description: "AESEL_TEST_ETCD is not set: run scripts/test.sh, or start etcd with scripts/etcd.sh and export its address")
            }
            // A cluster of the test's own in the shared etcd.
            discoveryURL = "\(etcd)/test-\(UUID().uuidString.prefix(8).lowercased())"
            adrestia = try TestServer("adrestia", dataFolder: dataFolder, arguments: storeArguments + ["--discovery", discoveryURL] + adrestiaArguments)
        }
        pairArguments = storeArguments + ["--discovery", discoveryURL]
        for pair in pairs {
            try startPair(pair.id, region: pair.region)
        }
    }

    func startPair(_ id: String, region: String) throws {
        pairs[id] = try TestServer("pair", dataFolder: dataFolder, arguments: pairArguments + ["--pair-id", id, "--region", region])
    }

    /// Kills a pair's process with `signal` (SIGKILL by default) without removing the shared data folder.
    func kill(_ id: String, signal: Int32 = SIGKILL) {
        guard let pair = pairs[id] else { return }
        if signal == SIGKILL {
            pair.process.stop(signal: SIGKILL)
        } else {
            Glibc.kill(pair.process.pid, signal)
        }
    }

    /// Restarts Adrestia with the same arguments (SIGTERM, then start).
    func restartAdrestia() throws {
        try adrestia.restart()
    }

    /// `GET /v1/pairs`, by pair id.
    func pairStatus() async throws -> [String: [String: Any]] {
        let listed = try await adrestia.request("GET", "/v1/pairs").json["pairs"] as? [[String: Any]] ?? []
        return Dictionary(listed.map { ($0["pair"] as? String ?? "", $0) }) { first, _ in first }
    }

    /// Waits until exactly `ids` are listed and healthy.
    func waitUntilHealthy(_ ids: Set<String>, timeout: Duration = .seconds(15)) async throws -> Bool {
        try await eventually(timeout: timeout) {
            let status = try await pairStatus()
            return Set(status.keys) == ids && ids.allSatisfy { status[$0]?["healthy"] as? Bool == true }
        }
    }

    /// `GET /v1/scene/{scene}/endpoint`: the scene's pair and its CLyman UDP port.
    func endpoint(of scene: String) async throws -> (pair: String, port: Int)? {
        let answer = try await adrestia.request("GET", "/v1/scene/\(scene)/endpoint")
        guard answer.status == 200, let pair = answer.json["pair"] as? String, let port = answer.json["event_destination_port"] as? Int else { return nil }
        return (pair, port)
    }

    /// Creates a scene of `region` through Adrestia.
    func createScene(_ key: String, region: String) async throws {
        let created = try await adrestia.request("PUT", "/v1/scene/\(key)", body: #"{"scenes":[{"name":"\#(key)","region":"\#(region)"}]}"#)
        #expect(created.status == 200, "scene \(key) created")
    }

    /// Creates an object in `scene` through the gateway; returns its key.
    func createObject(in scene: String) async throws -> String {
        let created = try await adrestia.request("POST", "/v1/scene/\(scene)/object", body: #"{"objects":[{"name":"thing"}]}"#)
        return try #require((created.json["objects"] as? [[String: Any]])?.first?["key"] as? String, "object created in \(scene)")
    }

    func stop() async {
        for pair in pairs.values { pair.process.stop(signal: SIGKILL) }
        adrestia.stop()
        try? FileManager.default.removeItem(atPath: dataFolder)
        try? await removeStore()
    }
}
