import AeselLocalCluster
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A Kafka-protocol broker of the test's own (the Tansu binary scripts/test.sh exports as
/// `AESEL_TEST_TANSU`), in memory, on a free loopback port, killed and restarted by PID.
package final class TestBroker: @unchecked Sendable {
    // @unchecked: `process` is replaced only by `start`, which a test calls from one task.
    private var process: Process?
    private let executable: String
    package let address: String

    package init() throws {
        guard let executable = ProcessInfo.processInfo.environment["AESEL_TEST_TANSU"], !executable.isEmpty else {
            throw TestSetupError(description: "AESEL_TEST_TANSU is not set: run scripts/test.sh")
        }
        self.executable = executable
        address = "127.0.0.1:\(freeTCPPort())"
        try start()
    }

    /// Starts the broker and waits until it accepts connections.
    package func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["broker", "--listener-url", "tcp://\(address)", "--advertised-listener-url", "tcp://\(address)", "--storage-engine", "memory://tansu/"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        let port = UInt16(address.split(separator: ":").last!)!
        for _ in 0..<200 {
            if canConnect(port: port) { return }
            usleep(50_000)
        }
        throw TestSetupError(description: "the Tansu broker did not start on \(address)")
    }

    package func kill() {
        guard let process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    package func stop() {
        kill()
    }

    private func canConnect(port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = UDPSocket.loopback(port: port)
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
