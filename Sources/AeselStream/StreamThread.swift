import AeselModel
import Dispatch
import Foundation
import NIOCore
import Synchronization

/// A thread of a stream back end (a receive loop, a heartbeat loop) that runs until stopped; `stop`
/// waits for it to end, so a shutdown never races it.
public final class StreamThread: Sendable {
    private let running = Atomic<Bool>(true)
    private let finished = DispatchSemaphore(value: 0)

    /// Starts `body`, which must return soon after `isRunning` turns false.
    public init(_ body: @escaping @Sendable (StreamThread) -> Void) {
        Thread { [self] in
            body(self)
            finished.signal()
        }.start()
    }

    public var isRunning: Bool { running.load(ordering: .relaxed) }

    /// Asks the thread to end and waits for it (at most `timeout`).
    public func stop(timeout: Double = 3) {
        guard running.exchange(false, ordering: .relaxed) else { return }
        _ = finished.wait(timeout: .now() + timeout)
    }
}
