import AeselWire
public import Metrics

/// CLyman's event counters, created once at start-up so the hot path only increments.
public struct IngestMetrics: Sendable {
    public let received = Counter(label: "aesel_udp_received_total")
    public let stale = Counter(label: "aesel_udp_dropped_total", dimensions: [("reason", "stale")])
    public let locked = Counter(label: "aesel_udp_dropped_total", dimensions: [("reason", "locked")])
    public let readErrors = Counter(label: "aesel_udp_read_errors_total")
    public let persisted = Counter(label: "aesel_persisted_transforms_total")
    public let persistFailures = Counter(label: "aesel_persist_failures_total")
    private let decodeDrops: [EventDecodeError: Counter]

    public init() {
        decodeDrops = Dictionary(
            uniqueKeysWithValues: EventDecodeError.allCases.map {
                ($0, Counter(label: "aesel_udp_dropped_total", dimensions: [("reason", $0.label)]))
            }
        )
    }

    func dropped(_ reason: EventDecodeError) {
        decodeDrops[reason]?.increment()
    }
}
