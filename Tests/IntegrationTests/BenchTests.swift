import AeselAuth
import AeselLocalCluster
import AeselTesting
import Foundation
import Testing

/// `aesel bench` as its users run it: against a server that asks for credentials (docs/security.md),
/// where the benchmark's own HTTP calls (registrations, objects) carry the credential of `--token-file`
/// or `--api-key-file` and its devices seal their events with the session keys the registrations
/// answer; and in rounds, the targets it starts taking turns.
@Suite("aesel bench", .timeLimit(.minutes(3)))
struct BenchTests {
    static let credentials = TestCredentials.shared

    /// `aesel bench ARGUMENTS --json` run to its end: its status, and the runs it printed.
    static func bench(_ arguments: [String], timeout: Duration = .seconds(60)) throws -> (status: Int32, runs: [[String: Any]], output: String) {
        let (status, output) = try ServerProcess.runToExit(
            executable: ServerProcess.aeselExecutable(), arguments: ["bench", "--json"] + arguments, timeout: timeout)
        // The JSON array, pretty-printed, after anything the servers logged.
        var runs: [[String: Any]] = []
        if let start = output.range(of: "[\n")?.lowerBound, let end = output.range(of: "]", options: .backwards)?.upperBound, start < end {
            runs = (try? JSONSerialization.jsonObject(with: Data(output[start..<end].utf8)) as? [[String: Any]]) ?? []
        }
        return (status, runs, output)
    }

    @Test("A token granted the bench's scenes, or an API key: every sealed event delivered; no credential: refused")
    func credentials() async throws {
        let server = try TestServer(access: .credentials(Self.credentials))
        defer { server.stop() }
        let folder = NSTemporaryDirectory() + "aesel-bench-credentials-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // The benchmark names its scenes bench-RUN-N: an application granted bench-* may run it.
        let tokenFile = folder + "/token"
        try Data((try await Self.credentials.token(role: .application, scenes: ["bench-*"]) + "\n").utf8).write(to: URL(fileURLWithPath: tokenFile))
        let keyFile = folder + "/key"
        try Data(Self.credentials.adminKey.utf8).write(to: URL(fileURLWithPath: keyFile))
        let load = ["--url", server.url, "--scenes", "2", "--devices", "3", "--rate", "50", "--seconds", "1", "--warmup", "0.2"]

        for credential in [["--token-file", tokenFile], ["--api-key-file", keyFile]] {
            let (status, runs, output) = try Self.bench(load + credential)
            #expect(status == 0, "\(output)")
            let run = try #require(runs.first, "\(output)")
            #expect((run["sent"] as? Int ?? 0) > 0)
            #expect(run["delivered"] as? Int == run["expected"] as? Int, "\(run)")
            #expect((run["p50"] as? Double ?? 0) > 0, "\(run)")
        }
        let refused = try Self.bench(load)
        #expect(refused.status != 0)
        #expect(refused.output.contains("registration failed") || refused.output.contains("401"), "\(refused.output)")
    }

    @Test("--rounds: both baselines, sealed and plaintext take turns; each result merges its rounds, and the table gives each round's ratios")
    func rounds() throws {
        let load = ["--baseline", "--event-security", "sealed,plaintext", "--rounds", "2", "--scenes", "1", "--devices", "3", "--rate", "50", "--seconds", "0.5", "--warmup", "0.2"]
        let (status, runs, output) = try Self.bench(load)
        #expect(status == 0, "\(output)")
        #expect(runs.map { $0["target"] as? String } == ["baseline", "baseline-batched", "aesel-sealed", "aesel-plaintext"], "\(output)")
        for run in runs {
            let rounds = run["rounds"] as? [[String: Any]] ?? []
            #expect(rounds.count == 2, "\(run)")
            #expect(run["sent"] as? Int == rounds.reduce(0) { $0 + ($1["sent"] as? Int ?? 0) }, "\(run)")
            #expect(run["delivered"] as? Int == run["expected"] as? Int, "\(run)")
            #expect((run["p99"] as? Double ?? 0) >= rounds.map { $0["p50"] as? Double ?? 0 }.min() ?? 0, "\(run)")
        }

        let (tableStatus, table) = try ServerProcess.runToExit(
            executable: ServerProcess.aeselExecutable(), arguments: ["bench"] + load, timeout: .seconds(60))
        #expect(tableStatus == 0, "\(table)")
        for pair in ["aesel-sealed/baseline", "aesel-plaintext/baseline-batched", "aesel-sealed/aesel-plaintext"] {
            #expect(table.contains("\(pair) by round: p50 "), "\(table)")
            #expect(table.contains("\(pair) median of rounds: p50 "), "\(table)")
        }
    }

    @Test("--find-max --rounds: every round's search ends, and each target's result is its median round's")
    func findMaximumInRounds() throws {
        let (status, runs, output) = try Self.bench([
            "--find-max", "--baseline", "--rounds", "2", "--scenes", "1", "--devices", "2", "--rate", "1000", "--seconds", "0.3", "--warmup", "0.1",
        ], timeout: .seconds(150))
        #expect(status == 0, "\(output)")
        // The baseline relays keep 2,000 updates a second on loopback however busy the machine is.
        #expect(runs.prefix(2).map { $0["target"] as? String } == ["baseline", "baseline-batched"], "\(output)")
        for run in runs {
            let rates = (run["rounds"] as? [[String: Any]] ?? []).compactMap { $0["sentPerSecond"] as? Double }
            #expect(!rates.isEmpty && rates.count <= 2, "\(run)")
            #expect(rates.sorted()[rates.count / 2] == run["sentPerSecond"] as? Double, "\(run)")
            #expect((run["lossPercent"] as? Double ?? 100) <= 0.1, "\(run)")
        }
    }

    @Test("--baseline with a ZeroMQ stream adds a bare relay joined by libzmq over the same transport", arguments: ["ipc", "tcp"])
    func zeroMQFloor(transport: String) throws {
        let stream = transport == "ipc" ? "zmq+ipc://\(NSTemporaryDirectory())aesel-bench-\(UUID().uuidString).sock" : "zmq+tcp://127.0.0.1:\(freeTCPPort())"
        let (status, runs, output) = try Self.bench([
            "--baseline", "--stream", stream, "--format", "json", "--scenes", "2", "--devices", "3", "--rate", "50", "--seconds", "0.5", "--warmup", "0.2",
        ])
        #expect(status == 0, "\(output)")
        #expect(runs.map { $0["target"] as? String } == ["baseline", "baseline-batched", "baseline-zmq+\(transport)", "aesel"], "\(output)")
        for run in runs {
            #expect((run["sent"] as? Int ?? 0) > 0, "\(run)")
            #expect(run["delivered"] as? Int == run["expected"] as? Int, "\(run)")
        }
    }
}
