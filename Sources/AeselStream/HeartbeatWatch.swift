import AeselModel
import NIOCore
import Synchronization
import NIOConcurrencyHelpers

/// What CrazyIvan's end of a cross-process stream knows of CLyman's heartbeats: when the last came, and
/// what it announced (CLyman's UDP endpoint). Every receiving back end keeps one.
public final class HeartbeatWatch: Sendable {
    private let lastHeartbeat = Atomic<UInt64>(0)
    private let announcement = NIOLockedValueBox<String>("")
    private let timeout: TimeAmount
    private let streamName: String

    /// - Parameter timeout: how long without a heartbeat before the stream counts as down.
    public init(stream: String, timeout: TimeAmount) {
        streamName = stream
        self.timeout = timeout
    }

    /// Called by the receiving thread for each heartbeat.
    public func record(announcement text: String) {
        if announcement.withLockedValue({ $0 }) != text { announcement.withLockedValue { $0 = text } }
        lastHeartbeat.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
    }

    public var isHealthy: Bool {
        let last = lastHeartbeat.load(ordering: .relaxed)
        return last != 0 && NIODeadline.now().uptimeNanoseconds - last < UInt64(timeout.nanoseconds)
    }

    public var lastAnnouncement: String { announcement.withLockedValue { $0 } }

    /// Waits for the first heartbeat: from then on no published event is lost.
    public func ready(timeout wait: Duration) async throws {
        let deadline = ContinuousClock.now + wait
        while lastHeartbeat.load(ordering: .relaxed) == 0 {
            guard ContinuousClock.now < deadline else { throw StreamError(.noHeartbeat, "no heartbeat from CLyman on the change stream \(streamName) within the timeout") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
