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
    }
}
