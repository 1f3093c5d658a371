import AeselModel
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A throwaway PostgreSQL server, as scripts/postgres.sh makes one: a new cluster in a folder of its own
/// (`initdb -A trust`, so every local connection is trusted), fsync off, the socket in that folder,
/// listening on 127.0.0.1 on a free port; the postmaster is the child, stopped by PID. For tests and demos
/// only: it trusts everyone and loses data on a crash. With TLS files it takes TCP connections over TLS
/// only (`ssl=on`, `hostssl` in pg_hba.conf); the socket in the folder stays plain.
///
/// initdb refuses to run as root, so as root both run as the `postgres` user (which Debian's postgresql
/// package makes), and the folder is given to it.
public final class PostgresProcess: @unchecked Sendable {
    // @unchecked: `process` is only touched by init and stop, which callers do not run concurrently.
    private let process: Process
    private let folder: String
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    public let url: String

    /// Makes a cluster in `folder` (made if missing, removed by ``stop()``), starts its server and waits
    /// until it accepts connections.
    /// - Throws: `LocalClusterError` `missingProgram` without PostgreSQL's programs under
    ///   /usr/lib/postgresql, `startFailed` when initdb fails or the server is not ready within `timeout`.
    public init(folder: String, tls: TLSFiles? = nil, timeout: Duration = .seconds(60)) async throws {
        let bin = try Self.binFolder()
        let owner = getuid() == 0 ? "postgres" : nil
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        if let owner {
            guard let account = getpwnam(owner), chown(folder, account.pointee.pw_uid, account.pointee.pw_gid) == 0 else {
                throw LocalClusterError(.startFailed, "cannot give \(folder) to the \(owner) user (Debian's postgresql package makes it)")
            }
        }
        let data = folder + "/data"
        let initdb = try Self.child(bin + "/initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"], in: folder, log: "initdb.log")
        try ChildLauncher.run(initdb, as: owner)
        ChildLauncher.waitForExit(initdb, timeout: timeout)
        guard initdb.terminationStatus == 0 else {
            let log = logTail(folder + "/initdb.log")
            try? FileManager.default.removeItem(atPath: folder)
            throw LocalClusterError(.startFailed, "initdb failed:\n\(log)")
        }

        var tlsArguments: [String] = []
        if let tls {
            // initdb's `host` lines take TCP with or without TLS; `hostssl` only with it. Rewritten in
            // place, so the file keeps its owner.
            let rules = data + "/pg_hba.conf"
            let text = try String(contentsOfFile: rules, encoding: .utf8)
            let tlsOnly = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasPrefix("host ") ? "hostssl" + $0.dropFirst(4) : String($0) }
            try tlsOnly.joined(separator: "\n").write(toFile: rules, atomically: false, encoding: .utf8)
            // PostgreSQL reads its key only when the server's user owns it and no one else may read it.
            let (certificate, key) = (folder + "/server.pem", folder + "/server-key.pem")
            try FileManager.default.copyItem(atPath: tls.certificate, toPath: certificate)
            try FileManager.default.copyItem(atPath: tls.key, toPath: key)
            chmod(key, 0o600)
            if let owner, let account = getpwnam(owner) {
                for file in [certificate, key] { chown(file, account.pointee.pw_uid, account.pointee.pw_gid) }
            }
            tlsArguments = ["-c", "ssl=on", "-c", "ssl_cert_file=\(certificate)", "-c", "ssl_key_file=\(key)"]
        }
        let port = freeTCPPort()
        let server = try Self.child(
            bin + "/postgres",
            [
                "-D", data, "-p", "\(port)", "-k", folder, "-c", "listen_addresses=127.0.0.1",
                "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            ] + tlsArguments,
            in: folder, log: "postgres.log")
        // SIGQUIT is an immediate shutdown: the postmaster ends its backends and exits.
        try ChildLauncher.run(server, as: owner, deathSignal: "QUIT")
        process = server
        self.folder = folder
        url = "postgres://postgres@127.0.0.1:\(port)/postgres"

        let deadline = ContinuousClock.now + timeout
        while !Self.isReady(bin: bin, port: port) {
            guard server.isRunning, ContinuousClock.now < deadline else {
                let log = logTail(folder + "/postgres.log")
                stop()
                throw LocalClusterError(.startFailed, "PostgreSQL did not accept connections on 127.0.0.1:\(port); its log ends:\n\(log)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// The newest installed version's programs: initdb and postgres are not on PATH on Debian.
    private static func binFolder() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        let newest = versions.filter { FileManager.default.isExecutableFile(atPath: "\(root)/\($0)/bin/initdb") }
            .max { $0.compare($1, options: .numeric) == .orderedAscending }
        guard let newest else {
            throw LocalClusterError(
                .missingProgram, "no PostgreSQL under \(root): install Debian's postgresql (apt-get install postgresql), or run scripts/cluster.sh, which does")
        }
        return "\(root)/\(newest)/bin"
    }

    private static func child(_ executable: String, _ arguments: [String], in folder: String, log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        // The postgres user may not enter this process's working folder (root's home, say).
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        let output = try logFile(folder + "/" + log)
        process.standardOutput = output
        process.standardError = output
        return process
    }

    /// Whether the server accepts connections (pg_isready, which exits 0 then).
    private static func isReady(bin: String, port: Int) -> Bool {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: bin + "/pg_isready")
        probe.arguments = ["-q", "-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", "-d", "postgres"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        guard (try? ChildLauncher.run(probe)) != nil else { return false }
        ChildLauncher.waitForExit(probe, timeout: .seconds(5))
        return probe.terminationStatus == 0
    }

    /// Stops the server (SIGQUIT: immediate shutdown, as `pg_ctl stop -m immediate`; SIGKILL if it
    /// lingers) and removes its folder.
    public func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGQUIT) }
        ChildLauncher.waitForExit(process, timeout: .seconds(10))
        try? FileManager.default.removeItem(atPath: folder)
    }
}
