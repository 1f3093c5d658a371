import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Adrestia and its pairs, each a real process: `aesel adrestia` and `aesel pair --region --pair-id
/// --discovery`, on one shared store.
package final class TestCluster: @unchecked Sendable {
    // @unchecked: `pairs` and `adrestia` change only from the test's own task.
    package enum Discovery {
        /// Adrestia's own registry over HTTP.
        case embedded
        /// The test etcd (`AESEL_TEST_ETCD`, started by scripts/test.sh).
        case etcd
    }

    package enum Store {
        /// One SQLite file in a folder all processes share.
        case sqlite
        /// A fresh PostgreSQL database of the test's own.
        case postgres
    }

    package private(set) var adrestia: TestServer
    package private(set) var pairs: [String: TestServer] = [:]
    private let pairArguments: [String]
    private let dataFolder = NSTemporaryDirectory() + "aesel-cluster-\(UUID().uuidString)"
    private let removeStore: @Sendable () async throws -> Void

    /// Starts Adrestia, then a pair for each `(id, region)`.
    package init(discovery: Discovery, store: Store, pairs: [(id: String, region: String)], adrestiaArguments: [String] = []) async throws {
        var storeArguments: [String] = []
        if store == .postgres {
            let (url, remove) = try await TestStore.postgresDatabase()
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
                throw TestSetupError(description: "AESEL_TEST_ETCD is not set: run scripts/test.sh, or start etcd with scripts/etcd.sh and export its address")
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

    /// Restarts Adrestia with the same arguments (SIGTERM, then start).
    package func restartAdrestia() throws {
        try adrestia.restart()
    }

    /// `GET /v1/pairs`, by pair id.
    package func pairStatus() async throws -> [String: [String: Any]] {
        let listed = try await adrestia.request("GET", "/v1/pairs").json["pairs"] as? [[String: Any]] ?? []
        return Dictionary(listed.map { ($0["pair"] as? String ?? "", $0) }) { first, _ in first }
    }

    /// Waits until exactly `ids` are listed and healthy.
    package func waitUntilHealthy(_ ids: Set<String>, timeout: Duration = .seconds(15)) async throws -> Bool {
        try await eventually(timeout: timeout) {
            let status = try await pairStatus()
            return Set(status.keys) == ids && ids.allSatisfy { status[$0]?["healthy"] as? Bool == true }
        }
    }

    /// `GET /v1/scene/{scene}/endpoint`: the scene's pair and its CLyman UDP port.
    package func endpoint(of scene: String) async throws -> (pair: String, port: Int)? {
        let answer = try await adrestia.request("GET", "/v1/scene/\(scene)/endpoint")
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

    package func stop() async {
        for pair in pairs.values { pair.process.stop(signal: SIGKILL) }
        adrestia.stop()
        try? FileManager.default.removeItem(atPath: dataFolder)
        try? await removeStore()
    }
}
