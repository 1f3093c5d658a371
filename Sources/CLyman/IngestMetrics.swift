import AeselWire
public import Metrics

/// CLyman's event counters, created once at start-up so the hot path only increments.
public struct IngestMetrics: Sendable {
    /// The tables keyed by datagram contents, whose size is bounded by evicting entries.
    public enum Table: String, Sendable, CaseIterable {
        case sequences, sceneMembers = "scene_members"
    }

    public let received: Counter
    public let stale: Counter
    public let locked: Counter
    /// The event names an object or property that is not in the scene it names.
    public let notInScene: Counter
    /// Too many scenes were loading at once, or too many events waited for one.
    public let sceneLoading: Counter
    /// More keyframe or action updates waited for the store than ``EventActionEdits`` keeps.
    public let actionBacklog: Counter
    /// The store refused a keyframe or action update (too many actions or keyframes, or the record left the scene).
    public let actionRefused: Counter
    public let readErrors: Counter
    /// Keepalives answered; those not answered count as `malformed_keepalive` or `keepalive_limit` drops.
    public let keepalives: Counter
    /// A keepalive of the wrong shape, or a keepalive answer sent to CLyman.
    public let malformedKeepalives: Counter
    /// Over the answer rate, or the socket's send buffer full.
    public let keepalivesLimited: Counter
    public let persisted: Counter
    public let persistFailures: Counter
    /// Write-behind flushes that found the store unavailable and kept their batch for the next one.
    public let storeUnavailable: Counter
    private let decodeDrops: [EventDecodeError: Counter]
    private let evictions: [Table: Counter]

    /// - Parameter factory: the process's metrics system, or a test's.
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
            Counter(label: label, dimensions: dimensions, factory: factory)
        }
        received = counter("aesel_udp_received_total")
        stale = counter("aesel_udp_dropped_total", [("reason", "stale")])
        locked = counter("aesel_udp_dropped_total", [("reason", "locked")])
        notInScene = counter("aesel_udp_dropped_total", [("reason", "not_in_scene")])
        sceneLoading = counter("aesel_udp_dropped_total", [("reason", "scene_loading")])
        actionBacklog = counter("aesel_udp_dropped_total", [("reason", "action_backlog")])
        actionRefused = counter("aesel_udp_dropped_total", [("reason", "action_refused")])
        readErrors = counter("aesel_udp_read_errors_total")
        keepalives = counter("aesel_udp_keepalives_total")
        malformedKeepalives = counter("aesel_udp_dropped_total", [("reason", "malformed_keepalive")])
        keepalivesLimited = counter("aesel_udp_dropped_total", [("reason", "keepalive_limit")])
        persisted = counter("aesel_persisted_transforms_total")
        persistFailures = counter("aesel_persist_failures_total")
        storeUnavailable = counter("aesel_store_unavailable_total")
        decodeDrops = Dictionary(uniqueKeysWithValues: EventDecodeError.allCases.map { ($0, counter("aesel_udp_dropped_total", [("reason", $0.label)])) })
        evictions = Dictionary(uniqueKeysWithValues: Table.allCases.map { ($0, counter("aesel_state_evictions_total", [("table", $0.rawValue)])) })
    }

    func dropped(_ reason: EventDecodeError) {
        decodeDrops[reason]?.increment()
    }

    func evicted(_ count: Int, from table: Table) {
        evictions[table]?.increment(by: count)
    }
}
