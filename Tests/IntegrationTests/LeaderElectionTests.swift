import AeselTesting
import AeselClient
import AeselModel
import Foundation
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Several Adrestia instances on one etcd and one PostgreSQL store, each a real process: one leader,
/// elected through etcd, moves scenes; every instance serves the gateway (issue 12).
@Suite("Leader election: several Adrestia instances", .timeLimit(.minutes(3)))
struct LeaderElectionTests {
    /// Waits until exactly one of `among` says it leads, and every one of them names it.
    static func agreedLeader(_ cluster: TestCluster, among indexes: [Int], timeout: Duration = .seconds(10)) async throws -> Int? {
        var found: Int?
        _ = try await eventually(timeout: timeout) {
            guard let leader = await cluster.leader(among: indexes) else { return false }
            for index in indexes {
                let named = (try await cluster.listing(through: index)["leader"] as? [String: Any])?["instance"] as? String
                guard named == "adrestia-\(leader)" else { return false }
            }
            found = leader
            return true
        }
        return found
    }

    /// A counter or gauge of an instance's `/metrics`, 0 when absent.
    static func metric(_ name: String, of cluster: TestCluster, instance: Int) async throws -> Double {
        try await cluster.adrestias[instance].metrics()[name] ?? 0
    }

    @Test("kill -9 the leader: another instance leads, a device registers through a survivor, a pair killed right after still fails over, no mapping is lost, streams go on")
    func leaderKilled() async throws {
        let cluster = try await TestCluster(discovery: .etcd, store: .postgres, pairs: [("east-1", "east"), ("east-2", "east"), ("west-1", "west")], instances: 3)
        try await cluster.whileRunning {
            #expect(try await cluster.waitUntilHealthy(["east-1", "east-2", "west-1"], through: [0, 1, 2]))
            let leader = try #require(try await Self.agreedLeader(cluster, among: [0, 1, 2]))
            let survivors = [0, 1, 2].filter { $0 != leader }

            // Scenes made through different instances; every instance answers the same endpoint.
            try await cluster.createScene("harbour", region: "east")
            try await cluster.createScene("meadow", region: "west")
            let harbour = try #require(try await cluster.endpoint(of: "harbour", through: survivors[0]))
            let meadow = try #require(try await cluster.endpoint(of: "meadow", through: survivors[1]))
            for index in [0, 1, 2] {
                #expect(try await cluster.endpoint(of: "harbour", through: index)?.pair == harbour.pair)
            }
            let survivorPair = harbour.pair == "east-1" ? "east-2" : "east-1"

            // The devices know every instance, the leader first, so that they must pass over it once it is dead.
            let gateways = ([leader] + survivors).map { cluster.adrestias[$0].url }
            var clients: [AeselClient] = []
            for name in ["sender", "a", "b"] {
                clients.append(try await AeselClient.connect(.init(gateways: gateways, sceneKey: "harbour", deviceKey: "harbour-\(name)", silenceTimeout: .milliseconds(200), credential: admin)))
            }
            let object = try await cluster.createObject(in: "harbour")
            // 3 s of updates; the leader killed after 0.5 s, the scene's pair 100 ms later.
            let received = try await ClusterTests.stream(from: clients[0], to: Array(clients[1...]), object: object, scene: "harbour", count: 300) { step in
                if step == 50 { cluster.signalAdrestia(leader, SIGKILL) }
                if step == 60 { cluster.kill(harbour.pair) }
            }
            for numbers in received {
                #expect(numbers.first == 1, "updates flowed before the kills")
                #expect(numbers.last == 300, "updates flow through the new pair after both kills")
                #expect(numbers == numbers.sorted(), "in order")
            }
            #expect(clients[0].failovers == 1)

            let newLeader = try #require(try await Self.agreedLeader(cluster, among: survivors), "a survivor leads")
            #expect(survivors.contains(newLeader))
            #expect(try await Self.metric("aesel_leader", of: cluster, instance: newLeader) == 1)
            #expect(try await Self.metric("aesel_leader_changes_total", of: cluster, instance: newLeader) >= 1)
            for index in survivors {
                #expect(try await cluster.endpoint(of: "harbour", through: index)?.pair == survivorPair, "moved within the region")
                #expect(try await cluster.endpoint(of: "meadow", through: index)?.pair == meadow.pair, "an unaffected scene keeps its pair")
            }
            #expect(try await Self.metric("aesel_scenes_moved_total", of: cluster, instance: newLeader) >= 1)

            // A new device joins through the gateway list whose first instance is dead.
            let late = try await AeselClient.connect(.init(gateways: gateways, sceneKey: "harbour", deviceKey: "harbour-late", credential: admin))
            #expect(late.endpoint.port == clients[0].endpoint.port)
            await late.close()
            for client in clients { await client.close() }
        }
    }

    @Test("SIGSTOP the leader past its lease, kill a pair, SIGCONT: the stopped instance moves nothing, and the scene moved once")
    func stoppedLeaderStopsActing() async throws {
        let cluster = try await TestCluster(discovery: .etcd, store: .postgres, pairs: [("east-1", "east"), ("east-2", "east")], instances: 2)
        try await cluster.whileRunning {
            #expect(try await cluster.waitUntilHealthy(["east-1", "east-2"], through: [0, 1]))
            let stopped = try #require(try await Self.agreedLeader(cluster, among: [0, 1]))
            let other = 1 - stopped
            try await cluster.createScene("stage", region: "east")
            let before = try #require(try await cluster.endpoint(of: "stage", through: other))

            cluster.signalAdrestia(stopped, SIGSTOP)
            #expect(try await Self.agreedLeader(cluster, among: [other]) == other, "the other instance takes the lead")
            // The scene's pair dies while the old leader is stopped: the new leader moves it.
            cluster.kill(before.pair)
            let moved = try await eventually(timeout: .seconds(10)) { try await cluster.endpoint(of: "stage", through: other)?.pair != before.pair }
            #expect(moved)
            let after = try #require(try await cluster.endpoint(of: "stage", through: other))
            // Resumed, the old leader finds its lease gone, then sees the dead pair's probes missed.
            cluster.signalAdrestia(stopped, SIGCONT)
            try await Task.sleep(for: .seconds(2))
            #expect(try await Self.agreedLeader(cluster, among: [0, 1]) == other, "the resumed instance follows")
            #expect(try await Self.metric("aesel_leader", of: cluster, instance: stopped) == 0)
            #expect(try await Self.metric("aesel_scenes_moved_total", of: cluster, instance: stopped) == 0, "the resumed instance moved nothing")
            #expect(try await Self.metric("aesel_scenes_moved_total", of: cluster, instance: other) == 1, "moved once, by the new leader")
            #expect(try await cluster.endpoint(of: "stage", through: stopped)?.pair == after.pair)
        }
    }

    @Test("A restarted instance rejoins as a follower; a follower passes ?failed= reports to the leader")
    func restartRejoinsAsFollower() async throws {
        let cluster = try await TestCluster(discovery: .etcd, store: .postgres, pairs: [("east-1", "east")], instances: 2)
        try await cluster.whileRunning {
            #expect(try await cluster.waitUntilHealthy(["east-1"], through: [0, 1]))
            let leader = try #require(try await Self.agreedLeader(cluster, among: [0, 1]))
            let follower = 1 - leader
            try cluster.restartAdrestia(follower)
            #expect(try await cluster.waitUntilHealthy(["east-1"], through: [follower]))
            #expect(try await Self.agreedLeader(cluster, among: [0, 1]) == leader, "the leader keeps the lead")
            #expect(try await Self.metric("aesel_leader", of: cluster, instance: follower) == 0)

            try await cluster.createScene("annex", region: "east")
            let endpoint = try #require(try await cluster.endpoint(of: "annex"))
            let report = try await cluster.adrestias[follower].request("GET", "/v1/scene/annex/endpoint?failed=127.0.0.1:\(endpoint.port)")
            #expect(report.status == 200)
            #expect(report.json["pair"] as? String == "east-1", "a pair that answers its probes stays")
            #expect(try await Self.metric("aesel_failed_reports_total", of: cluster, instance: leader) == 1, "the leader got the report")
            #expect(try await Self.metric("aesel_failed_reports_forwarded_total", of: cluster, instance: follower) == 1)
        }
    }
}
