import AeselLocalCluster
import AeselTesting
import AeselClient
import AeselModel
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// `aesel bench --failover`: the time from `kill -9` of a pair to the first update delivered through
/// the pair Adrestia moves the scene to, with default settings everywhere (Adrestia probes every 50 ms,
/// 3 misses; AeselClient asks for a new endpoint after 300 ms of silence). Adrestia and two pairs of
/// one region run as processes on a shared SQLite store with embedded discovery; each run two devices
/// (AeselClient) of a scene of their own each send 100 updates a second, as players' poses do, and the
/// scene's pair is killed, then started again for the next run. Timed: the first update the one sends
/// after the kill that reaches the other. Also: the CPU an idle pair spends under the probes.
public struct FailoverBench: Sendable {
    public struct Result: Sendable, Codable {
        /// Milliseconds from the kill to the first update through the new pair, per run.
        public var milliseconds: [Double]
        /// Updates sent after the kill that never arrived, per run.
        public var lost: [Int]
        public var median: Double
        public var worst: Double
        /// An idle pair's CPU, milliseconds per second, while Adrestia probes it.
        public var idlePairCPU: Double
        /// Adrestia's CPU, milliseconds per second, probing two pairs.
        public var adrestiaCPU: Double
    }

    public var runs: Int
    static let sendInterval: Duration = .milliseconds(10)

    public init(runs: Int) {
        self.runs = runs
    }

    public func run() async throws -> Result {
        let folder = NSTemporaryDirectory() + "aesel-failover-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let executable = ServerProcess.aeselExecutable()
        // --insecure (no credentials): the benchmark times failover, not authentication.
        let adrestia = try ServerProcess(executable: executable, arguments: ["adrestia", "--http-port", "0", "--data", folder, "--log-level", "error", "--insecure"])
        defer { adrestia.stop() }
        let gateway = "http://\(adrestia.endpoints["http"]!)"
        var pairs: [String: ServerProcess] = [:]
        func startPair(_ id: String) throws {
            pairs[id] = try ServerProcess(executable: executable, arguments: [
                "pair", "--http-port", "0", "--udp-port", "0", "--data", folder, "--log-level", "error",
                "--discovery", gateway, "--pair-id", id, "--region", "bench", "--insecure",
            ])
        }
        defer { for pair in pairs.values { pair.stop(signal: SIGKILL) } }
        try startPair("a")
        try startPair("b")
        try await waitUntilHealthy(["a", "b"], gateway: gateway)

        var milliseconds: [Double] = []
        var lost: [Int] = []
        for run in 1...runs {
            let scene = "failover-\(run)-\(UInt32.random(in: 0...UInt32.max))"
            _ = try await request("PUT", gateway + "/v1/scene/\(scene)", body: #"{"scenes":[{"region":"bench"}]}"#)
            let sender = try await AeselClient.connect(.init(gateways: [gateway], sceneKey: scene, deviceKey: "sender"))
            let receiver = try await AeselClient.connect(.init(gateways: [gateway], sceneKey: scene, deviceKey: "receiver"))
            let victim = try await pairOfScene(scene, gateway: gateway)
            let created = try await request("POST", gateway + "/v1/scene/\(scene)/object", body: #"{"objects":[{"name":"thing"},{"name":"other"}]}"#)
            let keys = (created["objects"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }
            guard keys.count == 2 else { throw BenchError.server("object create failed: \(created)") }
            let (elapsed, missing) = try await Self.measureOneKill(sender: sender, receiver: receiver, scene: scene, objects: (keys[0], keys[1])) {
                pairs[victim]?.stop(signal: SIGKILL)
            }
            milliseconds.append(elapsed)
            lost.append(missing)
            await sender.close()
            await receiver.close()
            try startPair(victim)
            try await waitUntilHealthy(["a", "b"], gateway: gateway)
        }
        let sorted = milliseconds.sorted()
        let idlePairCPU = try await cpuMilliseconds(of: pairs["a"]!.pid, over: 5)
        let adrestiaCPU = try await cpuMilliseconds(of: adrestia.pid, over: 5)
        return Result(
            milliseconds: milliseconds, lost: lost,
            median: sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2,
            worst: sorted.last ?? 0, idlePairCPU: idlePairCPU, adrestiaCPU: adrestiaCPU)
    }

    /// Streams half a second, kills, and times the first update sent after the kill that arrives.
    /// Returns milliseconds, and the updates sent after the kill that were lost before it.
    /// `objects`: the sender's and the receiver's, made for this run.
    static func measureOneKill(
        sender: AeselClient, receiver: AeselClient, scene: String, objects: (String, String), kill: () async -> Void
    ) async throws -> (Double, Int) {
        let (thing, other) = objects
        // Updates sent after the kill are numbered from 1,000,001.
        let firstAfterKill: UInt64 = 1_000_001
        let arrival = Task { () -> (UInt64, ContinuousClock.Instant)? in
            for await event in receiver.updates where event.objectKey == thing && event.sequence >= firstAfterKill {
                return (event.sequence, .now)
            }
            return nil
        }
        // The other device sends its own pose all along, so each hears the other until the kill.
        let answering = Task {
            var sequence: UInt64 = 0
            while !Task.isCancelled {
                sequence += 1
                receiver.send(ObjectEvent(sceneKey: scene, objectKey: other, sequence: sequence))
                try? await Task.sleep(for: Self.sendInterval)
            }
        }
        defer { answering.cancel() }
        for sequence in UInt64(1)...50 {
            sender.send(ObjectEvent(sceneKey: scene, objectKey: thing, sequence: sequence))
            try await Task.sleep(for: Self.sendInterval)
        }
        await kill()
        let killedAt = ContinuousClock.now
        let sending = Task {
            var sequence = firstAfterKill
            while !Task.isCancelled {
                sender.send(ObjectEvent(sceneKey: scene, objectKey: thing, sequence: sequence))
                sequence += 1
                try? await Task.sleep(for: Self.sendInterval)
            }
        }
        let timeout = Task {
            try? await Task.sleep(for: .seconds(10))
            arrival.cancel()
        }
        let arrived = await arrival.value
        timeout.cancel()
        sending.cancel()
        guard let (sequence, at) = arrived else {
            throw BenchError.server("no update arrived through a new pair within 10 s of the kill")
        }
        return ((at - killedAt) / .milliseconds(1), Int(sequence - firstAfterKill))
    }

    private func pairOfScene(_ scene: String, gateway: String) async throws -> String {
        let answer = try await request("GET", gateway + "/v1/scene/\(scene)/endpoint")
        guard let pair = answer["pair"] as? String else { throw BenchError.server("no pair for \(scene): \(answer)") }
        return pair
    }

    private func waitUntilHealthy(_ ids: Set<String>, gateway: String) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let listed = (try? await request("GET", gateway + "/v1/pairs"))?["pairs"] as? [[String: Any]] ?? []
            let healthy = Set(listed.filter { $0["healthy"] as? Bool == true }.compactMap { $0["pair"] as? String })
            if ids.isSubset(of: healthy) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchError.server("pairs \(ids.sorted()) did not become healthy")
    }

    private func request(_ method: String, _ url: String, body: String? = nil) async throws -> [String: Any] {
        try await BenchCluster.request(method, url, body: body)
    }

    /// CPU (user and system) a process spends over `seconds`, in milliseconds per second, from /proc.
    private func cpuMilliseconds(of pid: Int32, over seconds: Double) async throws -> Double {
        func ticks() -> Double {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return 0 }
            // Fields after the command name: state is field 3; utime and stime are fields 14 and 15.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
            return user + system
        }
        let before = ticks()
        try await Task.sleep(for: .seconds(seconds))
        let hertz = Double(sysconf(Int32(_SC_CLK_TCK)))
        return (ticks() - before) / hertz * 1000 / seconds
    }

    public static func table(_ result: Result) -> String {
        var lines = ["run  kill to first update through the new pair  updates lost"]
        for (index, (ms, lost)) in zip(result.milliseconds, result.lost).enumerated() {
            lines.append(String(format: "%3d  %8.1f ms %36d", index + 1, ms, lost))
        }
        lines.append(String(format: "median %.1f ms, worst %.1f ms over %d runs (goal: under 500 ms)", result.median, result.worst, result.milliseconds.count))
        lines.append(String(format: "idle pair under probes: %.1f ms CPU per second; Adrestia probing 2 pairs: %.1f ms CPU per second", result.idlePairCPU, result.adrestiaCPU))
        return lines.joined(separator: "\n")
    }
}
