import AeselAuth
import AeselLocalCluster
import AeselTesting
import Foundation
import Testing

/// `aesel bench --url` against a server that asks for credentials (docs/security.md): the benchmark's
/// own HTTP calls (registrations, objects) carry the credential of `--token-file` or `--api-key-file`,
/// and its devices seal their events with the session keys the registrations answer.
@Suite("aesel bench against a running server", .timeLimit(.minutes(3)))
struct BenchTests {
    static let credentials = TestCredentials.shared

    /// `aesel bench ARGUMENTS --json` run to its end: its status, and the runs it printed.
    static func bench(_ arguments: [String]) throws -> (status: Int32, runs: [[String: Any]], output: String) {
        let (status, output) = try ServerProcess.runToExit(
            executable: ServerProcess.aeselExecutable(), arguments: ["bench", "--json"] + arguments, timeout: .seconds(60))
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
}
