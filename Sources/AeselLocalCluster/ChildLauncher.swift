import AeselModel
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts every child process of this module so that it ends with this process, however this one ends.
///
/// On Linux a child runs under util-linux's `setpriv --pdeathsig SIGNAL`, which has the kernel send it
/// SIGNAL when its parent dies (SIGKILL included) and then executes the program, so the child's PID is
/// the program's. The kernel sends it when the *thread* that spawned the child ends, and the threads of
/// Swift's pool and of Dispatch come and go, so every child is spawned from one thread that never ends.
/// Without setpriv (macOS), a parent killed with SIGKILL leaves its children running.
enum ChildLauncher {
    /// Runs `process`.
    /// - Parameters:
    ///   - user: the user to run it as (this process must be root), or nil for this process's own.
    ///   - deathSignal: what the child receives when this process dies, a `kill -l` name.
    static func run(_ process: Process, as user: String? = nil, deathSignal: String = "KILL") throws {
        #if os(Linux)
        guard let executable = process.executableURL?.path else { throw LocalClusterError(.startFailed, "no executable given") }
        if let setpriv = program("setpriv") {
            let identity = user.map { ["--reuid=\($0)", "--regid=\($0)", "--init-groups"] } ?? []
            process.executableURL = URL(fileURLWithPath: setpriv)
            process.arguments = identity + ["--pdeathsig", deathSignal, "--", executable] + (process.arguments ?? [])
        } else if let user {
            throw LocalClusterError(.missingProgram, "setpriv (Debian's util-linux) is needed to run \(executable) as \(user)")
        }
        #endif
        try SpawningThread.shared.perform { try process.run() }
    }

    /// The path of `name` on PATH, or nil.
    static func program(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            let candidate = "\(folder)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Waits up to `timeout` for `process` to end, then kills it (SIGKILL) and waits for that.
    static func waitForExit(_ process: Process, timeout: Duration) {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// The one thread children are spawned from; it lives as long as the process.
private final class SpawningThread: @unchecked Sendable {
    // @unchecked: `jobs` is only touched under `condition`.
    static let shared = SpawningThread()

    private final class Job: @unchecked Sendable {
        // @unchecked: `error` is written on the spawning thread before `done` is signalled, read after.
        let body: () throws -> Void
        var error: (any Error)?
        let done = DispatchSemaphore(value: 0)

        init(_ body: @escaping () throws -> Void) { self.body = body }
    }

    private let condition = NSCondition()
    private var jobs: [Job] = []

    private init() {
        let thread = Thread { SpawningThread.shared.serve() }
        thread.name = "aesel-spawn"
        thread.start()
    }

    /// Runs `body` on the spawning thread and waits for it.
    func perform(_ body: @escaping () throws -> Void) throws {
        let job = Job(body)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
        job.done.wait()
        if let error = job.error { throw error }
    }

    private func serve() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            do { try job.body() } catch { job.error = error }
            job.done.signal()
        }
    }
}

/// A TCP port nothing listens on right now, for a child that cannot pick its own.
public func freeTCPPort() -> Int {
    freeTCPPorts(1)[0]
}

/// `count` different TCP ports nothing listens on right now: each is bound on 127.0.0.1 port 0, and all are
/// released together. Another process may take one before the child does; the child then fails to start.
public func freeTCPPorts(_ count: Int) -> [Int] {
    var sockets: [Int32] = []
    defer { for fd in sockets { close(fd) } }
    return (0..<count).map { _ in
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        sockets.append(fd)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 ? getsockname(fd, $0, &length) : -1 }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
