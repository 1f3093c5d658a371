import Adrestia
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// The leader election against the test etcd (`AESEL_TEST_ETCD`, started by scripts/test.sh), in process,
/// so that both candidates' `isLeading` can be sampled every millisecond.
@Suite("Leader election on etcd")
struct LeadershipTests {
    static func etcd() throws -> EtcdClient {
        let url = try #require(ProcessInfo.processInfo.environment["AESEL_TEST_ETCD"], "AESEL_TEST_ETCD is not set: run scripts/test.sh")
        return EtcdClient(endpoint: "http://" + url.dropFirst("etcd://".count))
    }

    @Test("One of two candidates leads; stopped gracefully it resigns, the other leads, and the two never lead at once")
    func handover() async throws {
        let key = "/test-\(UUID().uuidString.prefix(8).lowercased())/leader"
        let etcd = try Self.etcd()
        let candidates = ["a", "b"].map { name in
            let leadership = Leadership(mode: .elected(etcd, key: key), timeout: .milliseconds(500), logger: Logger(label: name))
            leadership.start(as: LeaderRecord(instance: name, url: "http://\(name).invalid"))
            return leadership
        }
        let groups = candidates.map { ServiceGroup(services: [$0], logger: Logger(label: "test")) }
        let runs = groups.map { group in Task { try await group.run() } }

        // Sample both every millisecond for 1.5 s: a leader within the first read, never two.
        var bothLed = 0
        var firstLeader: Int?
        for _ in 0..<1500 {
            let leading = candidates.map(\.isLeading)
            if leading[0] && leading[1] { bothLed += 1 }
            if firstLeader == nil, let index = leading.firstIndex(of: true) { firstLeader = index }
            try await Task.sleep(for: .milliseconds(1))
        }
        let leader = try #require(firstLeader, "one candidate leads")
        let other = 1 - leader
        #expect(candidates[leader].isLeading && !candidates[other].isLeading)
        #expect(candidates[other].leader?.instance == candidates[leader].leader?.instance, "the follower names the leader")

        // A graceful stop resigns: the other leads well before the 500 ms timeout would let it.
        await groups[leader].triggerGracefulShutdown()
        let stoppedAt = ContinuousClock.now
        while !candidates[other].isLeading, ContinuousClock.now - stoppedAt < .seconds(5) {
            if candidates[0].isLeading && candidates[1].isLeading { bothLed += 1 }
            try await Task.sleep(for: .milliseconds(1))
        }
        #expect(candidates[other].isLeading)
        #expect(!candidates[leader].isLeading)
        #expect(bothLed == 0, "never two leaders")
        _ = try await runs[leader].value
        await groups[other].triggerGracefulShutdown()
        _ = try await runs[other].value
        #expect(try await etcd.get(key: key) == nil, "the last leader resigned too")
    }
}
