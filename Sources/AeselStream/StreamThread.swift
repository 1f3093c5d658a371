public import AeselModel
import Dispatch
import Foundation
public import NIOCore
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

/// Hands events from a receive thread to the fan-out's event loop, with a bound: past `limit` events not
/// yet run, new ones are refused (and counted by the caller) rather than queued without end.
public final class BoundedHandOff: Sendable {
    private let inFlight = Atomic<Int>(0)
    private let limit: Int
    private let subscriber: any ChangeStreamSubscriber
    private let eventLoop: any EventLoop

    public init(subscriber: any ChangeStreamSubscriber, eventLoop: any EventLoop, limit: Int = 100_000) {
        self.subscriber = subscriber
        self.eventLoop = eventLoop
        self.limit = limit
    }

    /// Returns false when the fan-out is `limit` events behind.
    public func deliver(_ event: ChangeEvent) -> Bool {
        guard inFlight.add(1, ordering: .relaxed).newValue <= limit else {
            inFlight.subtract(1, ordering: .relaxed)
            return false
        }
        eventLoop.execute { [self] in
            inFlight.subtract(1, ordering: .relaxed)
            subscriber.deliver(event)
        }
        return true
    }
}
