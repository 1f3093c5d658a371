public import Metrics

/// CrazyIvan's fan-out counters, created once at start-up.
public struct FanOutMetrics: Sendable {
    public let events: Counter
    public let datagrams: Counter
    public let unknownScene: Counter
    public let pendingOverflow: Counter
    public let backpressure: Counter
    public let oversizedEvents: Counter
    public let loadFailures: Counter
    /// From an event's arrival in this process (its datagram read, with the in-process stream; its
    /// receipt from the change stream otherwise) to its last copy handed to the kernel.
    public let relay: Timer

    public static let relayLabel = "aesel_relay_seconds"
    /// The relay histogram's buckets: the event path is measured in microseconds, its stalls in milliseconds.
    public static let relayBuckets: [Duration] = [
        .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
        .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(100),
    ]

    /// - Parameter factory: the process's metrics system, or a test's.
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
            Counter(label: label, dimensions: dimensions, factory: factory)
        }
        events = counter("aesel_fanout_events_total")
        datagrams = counter("aesel_fanout_datagrams_total")
        unknownScene = counter("aesel_udp_dropped_total", [("reason", "unknown_scene")])
        pendingOverflow = counter("aesel_udp_dropped_total", [("reason", "scene_loading")])
        backpressure = counter("aesel_udp_dropped_total", [("reason", "fanout_backpressure")])
        oversizedEvents = counter("aesel_fanout_oversized_events_total")
        loadFailures = counter("aesel_scene_load_failures_total")
        relay = Timer(label: Self.relayLabel, factory: factory)
    }
}
