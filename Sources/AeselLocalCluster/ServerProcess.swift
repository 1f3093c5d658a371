import AeselModel
import AeselServer
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An `aesel` child process (a server or the baseline relay), started on free loopback ports and stopped
/// by its PID; it dies with this process (see ChildLauncher). Used by `aesel bench`, `aesel cluster` and the
/// integration tests.
public final class ServerProcess: @unchecked Sendable {
    // @unchecked: `process` is only touched by start/stop, which callers do not run concurrently.
    public let process: Process
    /// The fields of the ready line, e.g. `http` and `udp` as `host:port`.
    public let endpoints: [String: String]

    public var pid: Int32 { process.processIdentifier }

    /// Starts `executable` with `arguments` and waits for its ready line.
    /// - Parameter errorLog: a file the child's standard error (its log) is written to; nil to share this
    ///   process's.
    public init(executable: String, arguments: [String], timeout: Duration = .seconds(30), errorLog: String? = nil) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        var errorHandle: FileHandle?
        if let errorLog {
            guard FileManager.default.createFile(atPath: errorLog, contents: nil), let handle = FileHandle(forWritingAtPath: errorLog) else {
                throw LocalClusterError(.startFailed, "cannot create \(errorLog)")
            }
            process.standardError = handle
            errorHandle = handle
        }
        try ChildLauncher.run(process)
        // The child has its own copy.
        try? errorHandle?.close()
        self.process = process

        guard let endpoints = Self.readReadyLine(from: output.fileHandleForReading, timeout: timeout) else {
            process.terminate()
            process.waitUntilExit()
            throw LocalClusterError(.startFailed, "\(executable) \(arguments.joined(separator: " ")) did not report ready")
        }
        self.endpoints = endpoints
        // Keep draining stdout so the child never blocks on a full pipe.
        output.fileHandleForReading.readabilityHandler = { handle in _ = handle.availableData }
    }

    /// Runs `executable` to its end, for a start that must fail: its exit status and what it wrote to
    /// standard output and error. One that is still running after `timeout` is killed (SIGKILL).
    public static func runToExit(executable: String, arguments: [String], timeout: Duration = .seconds(30)) throws -> (status: Int32, output: String) {
        let outputPath = NSTemporaryDirectory() + "aesel-output-\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: outputPath, contents: nil), let output = FileHandle(forWritingAtPath: outputPath) else {
            throw LocalClusterError(.startFailed, "cannot create \(outputPath)")
        }
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = output
        try ChildLauncher.run(process)
        ChildLauncher.waitForExit(process, timeout: timeout)
        try output.close()
        let text = String(decoding: FileManager.default.contents(atPath: outputPath) ?? Data(), as: UTF8.self)
        return (process.terminationStatus, text)
    }

    /// The path of the running `aesel` executable, or of the one beside a test bundle.
    public static func aeselExecutable() -> String {
        if let override = ProcessInfo.processInfo.environment["AESEL_BIN"] { return override }
        let current = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        if (current as NSString).lastPathComponent == "aesel" { return current }
        // A test runner lives in the build folder, or in a bundle inside it.
        var folder = URL(fileURLWithPath: current).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = folder.appendingPathComponent("aesel").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            folder.deleteLastPathComponent()
        }
        return "aesel"
    }

    public func port(_ name: String) -> Int? {
        endpoints[name].flatMap { $0.split(separator: ":").last }.flatMap { Int($0) }
    }

    /// Sends `signal` (SIGTERM by default: graceful) and waits for the process to end.
    /// - Returns: the exit status.
    @discardableResult
    public func stop(signal: Int32 = SIGTERM) -> Int32 {
        if process.isRunning {
            kill(process.processIdentifier, signal)
        }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    private static func readReadyLine(from handle: FileHandle, timeout: Duration) -> [String: String]? {
        let deadline = ContinuousClock.now + timeout
        var pending = Data()
        let fd = handle.fileDescriptor
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) >= 0 else { return nil }
            guard poller.revents != 0 else { continue }
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { return nil }  // the child exited before it was ready
            pending.append(contentsOf: buffer[0..<count])
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                pending.removeSubrange(pending.startIndex...newline)
                if let endpoints = ReadyLine.parse(line) { return endpoints }
            }
        }
        return nil
    }
}
