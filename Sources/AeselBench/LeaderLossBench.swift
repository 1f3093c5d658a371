import AeselClient
import AeselLocalCluster
import AeselModel
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// `aesel bench --leader-loss`: what losing the leading Adrestia costs, with default settings everywhere
/// (`--leader-timeout 500`, probes every 50 ms, AeselClient's 300 ms silence). A throwaway etcd and
/// PostgreSQL, two Adrestia instances and two pairs of one region run as processes. Two measurements,
/// `runs` times each; the killed processes are started again between runs:
/// - **leader loss**: from `kill -9` of the leader to the first probe round of the instance that leads
///   next, as that instance reports it (`first_probe_round_unix_ms`, same machine, same clock);
/// - **a pair killed 100 ms after the leader**: two devices of a scene of their own send 100 updates a
///   second each (gateways: the leader first); from the `kill -9` of the scene's pair to the first
///   update the one sends after it that reaches the other, through the pair the new leader moved it to.
public struct LeaderLossBench: Sendable {
    public struct Result: Sendable, Codable {
        /// Milliseconds from the leader's kill to its successor's first probe round, per run.
        public var leaderLoss: [Double]
        /// Milliseconds from the pair's kill (100 ms after the leader's) to the first update through the new pair, per run.
        public var pairAfterLeader: [Double]
        /// Updates sent after the pair's kill that never arrived, per run.
        public var lost: [Int]
    }

    public var runs: Int
    static let instances = 2

    public init(runs: Int) {
        self.runs = runs
    }

    public func run() async throws -> Result {
        let folder = NSTemporaryDirectory() + "aesel-leader-loss-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let etcd = try await EtcdProcess(folder: folder + "/etcd")
        defer { etcd.stop() }
        let postgres = try await PostgresProcess(folder: folder + "/postgres")
        defer { postgres.stop() }
        let cluster = BenchCluster(folder: folder, discovery: etcd.url + "/bench", store: postgres.url)
        defer { cluster.stopAll() }
        for index in 0..<Self.instances { try cluster.startAdrestia(index) }
        try cluster.startPair("a")
        try cluster.startPair("b")
        try await cluster.waitUntilSettled(pairs: ["a", "b"])

        var leaderLoss: [Double] = []
        for _ in 1...runs {
            let leader = try await cluster.agreedLeader()
            let killedAt = BenchCluster.unixMilliseconds()
            cluster.killAdrestia(leader)
            let successor = (leader + 1) % Self.instances
            let firstRound = try await cluster.firstProbeRound(of: successor)
            leaderLoss.append(Double(firstRound - killedAt))
            try cluster.startAdrestia(leader)
            try await cluster.waitUntilSettled(pairs: ["a", "b"])
        }

        var pairAfterLeader: [Double] = []
        var lost: [Int] = []
        for run in 1...runs {
            let leader = try await cluster.agreedLeader()
            let gateways = ([leader] + (0..<Self.instances).filter { $0 != leader }).map { cluster.adrestiaURL($0) }
            let scene = "leader-loss-\(run)-\(UInt32.random(in: 0...UInt32.max))"
            _ = try await BenchCluster.request("PUT", gateways[0] + "/v1/scene/\(scene)", body: #"{"scenes":[{"region":"bench"}]}"#)
            let sender = try await AeselClient.connect(.init(gateways: gateways, sceneKey: scene, deviceKey: "sender"))
            let receiver = try await AeselClient.connect(.init(gateways: gateways, sceneKey: scene, deviceKey: "receiver"))
            let victim = try await BenchCluster.request("GET", gateways[0] + "/v1/scene/\(scene)/endpoint")["pair"] as? String ?? ""
            let created = try await BenchCluster.request("POST", gateways[0] + "/v1/scene/\(scene)/object", body: #"{"objects":[{"name":"thing"},{"name":"other"}]}"#)
            let keys = (created["objects"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }
            guard keys.count == 2, !victim.isEmpty else { throw BenchError.server("scene set-up failed: \(created)") }
            let (elapsed, missing) = try await FailoverBench.measureOneKill(sender: sender, receiver: receiver, scene: scene, objects: (keys[0], keys[1])) {
                cluster.killAdrestia(leader)
                try? await Task.sleep(for: .milliseconds(100))
                cluster.killPair(victim)
            }
            pairAfterLeader.append(elapsed)
            lost.append(missing)
            await sender.close()
            await receiver.close()
            try cluster.startAdrestia(leader)
            try cluster.startPair(victim)
            try await cluster.waitUntilSettled(pairs: ["a", "b"])
        }
        return Result(leaderLoss: leaderLoss, pairAfterLeader: pairAfterLeader, lost: lost)
    }

    public static func table(_ result: Result) -> String {
        var lines = ["run  leader kill to new leader's first probe round   pair kill (100 ms later) to first update via its replacement   lost"]
        for index in result.leaderLoss.indices {
            let pair = index < result.pairAfterLeader.count ? String(format: "%8.1f ms", result.pairAfterLeader[index]) : ""
            let lost = index < result.lost.count ? "\(result.lost[index])" : ""
            lines.append(String(format: "%3d  %8.1f ms", index + 1, result.leaderLoss[index]) + String(repeating: " ", count: 38) + pair + String(repeating: " ", count: 52) + lost)
        }
        let loss = result.leaderLoss.sorted()
        let pair = result.pairAfterLeader.sorted()
        lines.append(String(format: "leader loss: median %.1f ms, worst %.1f ms (goal: under 1000 ms)", median(loss), loss.last ?? 0))
        lines.append(String(format: "pair killed after the leader: median %.1f ms, worst %.1f ms (goal: under 1500 ms)", median(pair), pair.last ?? 0))
        return lines.joined(separator: "\n")
    }

    private static func median(_ sorted: [Double]) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

/// The bench's cluster: Adrestia instances and pairs as processes, each started again after a kill with
/// the same arguments (so an instance keeps its `--instance-id`).
final class BenchCluster: @unchecked Sendable {
    // @unchecked: the processes change only from the bench's own task.
    private let folder: String
    private let discovery: String
    private let store: String
    private let executable = ServerProcess.aeselExecutable()
    private var adrestias: [Int: ServerProcess] = [:]
    private var pairs: [String: ServerProcess] = [:]

    init(folder: String, discovery: String, store: String) {
        (self.folder, self.discovery, self.store) = (folder, discovery, store)
    }

    func startAdrestia(_ index: Int) throws {
        adrestias[index] = try ServerProcess(executable: executable, arguments: [
            "adrestia", "--http-port", "0", "--data", folder, "--log-level", "error", "--discovery", discovery, "--store", store,
            "--instance-id", "adrestia-\(index)", "--insecure",
        ])
    }

    func startPair(_ id: String) throws {
        pairs[id] = try ServerProcess(executable: executable, arguments: [
            "pair", "--http-port", "0", "--udp-port", "0", "--data", folder, "--log-level", "error", "--discovery", discovery, "--store", store,
            "--pair-id", id, "--region", "bench", "--insecure",
        ])
    }

    func killAdrestia(_ index: Int) { adrestias[index]?.stop(signal: SIGKILL) }
    func killPair(_ id: String) { pairs[id]?.stop(signal: SIGKILL) }

    func stopAll() {
        for process in Array(adrestias.values) + Array(pairs.values) { process.stop(signal: SIGKILL) }
    }

    func adrestiaURL(_ index: Int) -> String { "http://" + (adrestias[index]?.endpoints["http"] ?? "") }

    /// The instance every instance names as leader.
    func agreedLeader() async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            var named: Set<String> = []
            for index in adrestias.keys {
                let listing = (try? await Self.request("GET", adrestiaURL(index) + "/v1/pairs")) ?? [:]
                named.insert((listing["leader"] as? [String: Any])?["instance"] as? String ?? "")
            }
            if named.count == 1, let only = named.first, only.hasPrefix("adrestia-"), let index = Int(only.dropFirst("adrestia-".count)) { return index }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw BenchError.server("the Adrestia instances do not agree on a leader")
    }

    /// Polls `index` until it leads and reports its first probe round; Unix milliseconds.
    func firstProbeRound(of index: Int) async throws -> Int64 {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let listing = (try? await Self.request("GET", adrestiaURL(index) + "/v1/pairs")) ?? [:]
            let leader = listing["leader"] as? [String: Any]
            if leader?["instance"] as? String == "adrestia-\(index)", let round = leader?["first_probe_round_unix_ms"] as? Int64 ?? (leader?["first_probe_round_unix_ms"] as? Int).map(Int64.init) {
                return round
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw BenchError.server("adrestia-\(index) did not take the lead")
    }

    /// Every instance lists every pair in `pairs` healthy, and they agree on a leader.
    func waitUntilSettled(pairs ids: Set<String>) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            var settled = true
            for index in adrestias.keys {
                let listed = (try? await Self.request("GET", adrestiaURL(index) + "/v1/pairs"))?["pairs"] as? [[String: Any]] ?? []
                let healthy = Set(listed.filter { $0["healthy"] as? Bool == true }.compactMap { $0["pair"] as? String })
                if !ids.isSubset(of: healthy) { settled = false }
            }
            if settled {
                _ = try await agreedLeader()
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchError.server("pairs \(ids.sorted()) did not become healthy in every instance's view")
    }

    static func request(_ method: String, _ url: String, body: String? = nil) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: url)
        request.method = .init(rawValue: method)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
    }

    static func unixMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
