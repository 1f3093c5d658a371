import AeselHTTP
import AeselModel
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A throwaway etcd: Debian's `etcd` (etcd-server) from PATH, one member on free 127.0.0.1 client and
/// peer ports, its data in a folder of its own, stopped by PID. The flags are scripts/etcd.sh's. With
/// TLS files, its client port speaks only HTTPS.
public final class EtcdProcess: @unchecked Sendable {
    // @unchecked: `process` is only touched by init and stop, which callers do not run concurrently.
    private let process: Process
    private let folder: String
    /// `etcd://127.0.0.1:PORT` (`etcds://` with TLS), as `--discovery` takes it (with `/CLUSTER` added).
    public let url: String

    /// Starts etcd with its files in `folder` (made if missing, removed by ``stop()``) and waits until
    /// `/health` answers healthy.
    /// - Throws: `LocalClusterError` `missingProgram` without an etcd on PATH, `startFailed` when it exits
    ///   or is not healthy within `timeout`.
    public init(folder: String, tls: TLSFiles? = nil, timeout: Duration = .seconds(30)) async throws {
        guard let etcd = ChildLauncher.program("etcd") else {
            throw LocalClusterError(
                .missingProgram, "etcd is not on PATH: install Debian's etcd-server (apt-get install etcd-server), or run scripts/cluster.sh, which does")
        }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let ports = freeTCPPorts(2)
        let client = (tls == nil ? "http" : "https") + "://127.0.0.1:\(ports[0])"
        let peer = "http://127.0.0.1:\(ports[1])"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: etcd)
        process.arguments = [
            "--name", "aesel-local", "--data-dir", folder + "/data",
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "aesel-local=\(peer)", "--initial-cluster-state", "new",
            // The Adrestia leader rewrites its key 10 times a second: keep etcd's history short.
            "--auto-compaction-mode", "revision", "--auto-compaction-retention", "10000",
            "--log-level", "warn", "--logger", "zap",
        ] + (tls.map { ["--cert-file", $0.certificate, "--key-file", $0.key] } ?? [])
        let log = try logFile(folder + "/etcd.log")
        process.standardOutput = log
        process.standardError = log
        try ChildLauncher.run(process)
        self.process = process
        self.folder = folder
        url = (tls == nil ? "etcd" : "etcds") + "://127.0.0.1:\(ports[0])"

        var configuration = HTTPClient.Configuration()
        configuration.tlsConfiguration = try TLSSettings.clientConfiguration(trusting: tls?.certificateAuthority)
        let http = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
        let deadline = ContinuousClock.now + timeout
        var healthy = await Self.isHealthy(client, http)
        while !healthy, process.isRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
            healthy = await Self.isHealthy(client, http)
        }
        try? await http.shutdown()
        guard healthy else {
            let log = logTail(folder + "/etcd.log")
            stop()
            throw LocalClusterError(.startFailed, "etcd did not become healthy on \(client); its log ends:\n\(log)")
        }
    }

    private static func isHealthy(_ client: String, _ http: HTTPClient) async -> Bool {
        guard let response = try? await http.execute(HTTPClientRequest(url: client + "/health"), timeout: .seconds(1)),
            let body = try? await response.body.collect(upTo: 1 << 16)
        else { return false }
        return String(buffer: body).contains(#""health":"true""#)
    }

    /// Stops etcd (SIGTERM, SIGKILL if it lingers) and removes its folder.
    public func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        ChildLauncher.waitForExit(process, timeout: .seconds(10))
        try? FileManager.default.removeItem(atPath: folder)
    }
}

/// A server's TLS files (PEM), for a throwaway etcd or PostgreSQL that speaks only TLS.
public struct TLSFiles: Sendable {
    public var certificate: String
    public var key: String
    /// The authority that signed `certificate`: what the server's own health check trusts.
    public var certificateAuthority: String

    public init(certificate: String, key: String, certificateAuthority: String) {
        self.certificate = certificate
        self.key = key
        self.certificateAuthority = certificateAuthority
    }
}

/// A new, empty file a child writes its output to.
func logFile(_ path: String) throws -> FileHandle {
    guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
        throw LocalClusterError(.startFailed, "cannot create \(path)")
    }
    return handle
}

/// The last lines of a child's log, for an error message.
func logTail(_ path: String, lines: Int = 20) -> String {
    let text = String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
}
