import Adrestia
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// The leader election against the test etcd (`AESEL_TEST_ETCD`, started by scripts/test.sh), in process,
/// so that both candidates' `isLeading` can be sampled every millisecond.
@Suite("Leader election on etcd")
struct LeadershipTests {
    /// Polls `condition` every 10 ms until it holds or `timeout` passes.
    static func eventually(timeout: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return try await condition()
    }

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

        // Sample both every millisecond for 1.5 s: never two leaders. (On a loaded machine a renewal can
        // miss its lease and the lead change hands; that is allowed, two at once is not.)
        var bothLed = 0
        for _ in 0..<1500 {
            if candidates[0].isLeading && candidates[1].isLeading { bothLed += 1 }
            try await Task.sleep(for: .milliseconds(1))
        }
        var leader = 0
        let settled = try await Self.eventually(timeout: .seconds(5)) {
            let leading = candidates.map(\.isLeading)
            guard leading[0] != leading[1] else { return false }
            leader = leading[0] ? 0 : 1
            return candidates[1 - leader].leader?.instance == candidates[leader].leader?.instance
        }
        #expect(settled, "one candidate leads, and the other names it")
        let other = 1 - leader

        // A graceful stop resigns: the other leads well before the 500 ms timeout would let it.
        await groups[leader].triggerGracefulShutdown()
        let stoppedAt = ContinuousClock.now
        while !candidates[other].isLeading, ContinuousClock.now - stoppedAt < .seconds(5) {
            if candidates[0].isLeading && candidates[1].isLeading { bothLed += 1 }
            try await Task.sleep(for: .milliseconds(1))
        }
        #expect(candidates[other].isLeading)
        #expect(bothLed == 0, "never two leaders")
        _ = try await runs[leader].value
        #expect(!candidates[leader].isLeading)
        await groups[other].triggerGracefulShutdown()
        _ = try await runs[other].value
        #expect(try await etcd.get(key: key) == nil, "the last leader resigned too")
    }
}
