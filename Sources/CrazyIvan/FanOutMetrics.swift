public import Metrics

/// CrazyIvan's fan-out counters, created once at start-up.
public struct FanOutMetrics: Sendable {
    public let events = Counter(label: "aesel_fanout_events_total")
    public let datagrams = Counter(label: "aesel_fanout_datagrams_total")
    public let unknownScene = Counter(label: "aesel_udp_dropped_total", dimensions: [("reason", "unknown_scene")])
    public let pendingOverflow = Counter(label: "aesel_udp_dropped_total", dimensions: [("reason", "scene_loading")])
    public let backpressure = Counter(label: "aesel_udp_dropped_total", dimensions: [("reason", "fanout_backpressure")])
    public let oversizedEvents = Counter(label: "aesel_fanout_oversized_events_total")
    public let loadFailures = Counter(label: "aesel_scene_load_failures_total")

    public init() {}
}
