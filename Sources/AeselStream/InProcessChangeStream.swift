public import AeselModel

/// The in-process back end: CLyman and CrazyIvan in one process, handed over by a direct call.
///
/// No copy and no serialisation: the decoded event goes straight to the subscriber on the publishing
/// thread (the pair's event loop), so the fan-out runs in the same turn as the read.
public struct InProcessChangeStream: ChangeStream {
    private let subscriber: any ChangeStreamSubscriber

    public init(subscriber: any ChangeStreamSubscriber) {
        self.subscriber = subscriber
    }

    public func publish(_ event: ChangeEvent) {
        subscriber.deliver(event)
    }

    public var isHealthy: Bool { true }

    public var droppedCount: Int { 0 }
}
