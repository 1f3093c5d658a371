import AeselWire
public import Metrics

/// CLyman's event counters, created once at start-up so the hot path only increments.
public struct IngestMetrics: Sendable {
    /// The tables keyed by datagram contents, whose size is bounded by evicting entries.
    public enum Table: String, Sendable, CaseIterable {
        case sequences, sceneMembers = "scene_members"
    }

    public let received = Counter(label: "aesel_udp_received_total")
    public let stale = Counter(label: "aesel_udp_dropped_total", dimensions: [("reason", "stale")])
    public let locked = Counter(label: "aesel_udp_dropped_total", dimensions: [("reason", "locked")])
    /// The event names an object or property that is not in the scene it names.
    public let notInScene = Counter(label: "aesel_udp_dropped_total", dimensions: [("reason", "not_in_scene")])
    /// Too many scenes were loading at once, or too many events waited for one.
    public let sceneLoading = Counter(label: "aesel_udp_dropped_total", dimensions: [("reason", "scene_loading")])
    public let readErrors = Counter(label: "aesel_udp_read_errors_total")
    public let persisted = Counter(label: "aesel_persisted_transforms_total")
    public let persistFailures = Counter(label: "aesel_persist_failures_total")
    /// Write-behind flushes that found the store unavailable and kept their batch for the next one.
    public let storeUnavailable = Counter(label: "aesel_store_unavailable_total")
    private let decodeDrops: [EventDecodeError: Counter]
    private let evictions: [Table: Counter]

    public init() {
        decodeDrops = Dictionary(
            uniqueKeysWithValues: EventDecodeError.allCases.map {
                ($0, Counter(label: "aesel_udp_dropped_total", dimensions: [("reason", $0.label)]))
            }
        )
        evictions = Dictionary(
            uniqueKeysWithValues: Table.allCases.map { ($0, Counter(label: "aesel_state_evictions_total", dimensions: [("table", $0.rawValue)])) }
        )
    }

    func dropped(_ reason: EventDecodeError) {
        decodeDrops[reason]?.increment()
    }

    func evicted(_ count: Int, from table: Table) {
        evictions[table]?.increment(by: count)
    }
}
