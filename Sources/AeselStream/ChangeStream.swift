public import AeselModel

/// Receives the events that come out of a change stream: CrazyIvan's fan-out.
public protocol ChangeStreamSubscriber: Sendable {
    /// Called once per event, in the order of publication for each scene, on the thread that received it
    /// (a back end's receive thread, or the publisher's with the in-process stream). Must not block.
    func deliver(_ event: ChangeEvent)
}

/// CrazyIvan's end of a stream that crosses threads or processes (ZeroMQ, Kafka): it receives on a
/// thread of its own, hands events to the subscriber, and watches the publisher's heartbeats.
public protocol StreamReceiver: Sendable {
    /// True while the publisher's heartbeats arrive.
    var isHealthy: Bool { get }
    /// What the publisher's heartbeats announce: CLyman's UDP endpoint, `host:port`.
    var partnerAnnouncement: String { get }
    /// Waits for the first heartbeat: from then on no published event is lost.
    func ready(timeout: Duration) async throws
    /// Messages received that were not events (malformed, or errors the back end reported).
    var rejectedCount: Int { get }
    func stop()
}

/// The hand-over from CLyman to CrazyIvan. The topic is the scene key, so ordering holds per scene.
///
/// `publish` is on the UDP hot path: it must not block, await or log above trace. A back end that cannot
/// deliver counts the event as dropped rather than buffering without bound.
public protocol ChangeStream: Sendable {
    func publish(_ event: ChangeEvent)
    /// Whether the stream currently reaches its partner.
    var isHealthy: Bool { get }
    /// Events it could not hand over (no partner listening, or its queue full).
    var droppedCount: Int { get }
}
