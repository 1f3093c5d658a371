public import AeselModel

/// Receives the events that come out of a change stream: CrazyIvan's fan-out.
public protocol ChangeStreamSubscriber: Sendable {
    /// Called once per event, in the order of publication for each scene. Must not block.
    func deliver(_ event: ChangeEvent)
}

/// The hand-over from CLyman to CrazyIvan. The topic is the scene key, so ordering holds per scene.
///
/// `publish` is on the UDP hot path: it must not block, await or log above trace. A back end that cannot
/// deliver counts the event as dropped rather than buffering without bound.
public protocol ChangeStream: Sendable {
    func publish(_ event: ChangeEvent)
    /// Whether the stream currently reaches its partner.
    var isHealthy: Bool { get }
}
