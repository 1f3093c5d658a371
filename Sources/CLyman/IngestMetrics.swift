import AeselWire
public import Metrics

/// CLyman's event counters, created once at start-up so the hot path only increments: one set for the
/// UDP event port (`aesel_udp_…`), one for WebSocket devices' updates (`aesel_websocket_…`).
public struct IngestMetrics: Sendable {
    public enum Transport: String, Sendable {
        case udp, webSocket = "websocket"
    }

    /// The tables keyed by datagram contents, whose size is bounded by evicting entries.
    public enum Table: String, Sendable, CaseIterable {
        case sequences, sceneMembers = "scene_members", sessions, rateLimits = "rate_limits"
    }

    /// Why a pair with sealed (or the original's encrypted) events dropped a datagram before reading the
    /// event in it (docs/protocol.md).
    public enum SealDrop: String, Sendable, CaseIterable {
        /// Not a sealed datagram (plaintext, or a header of the wrong version or shape).
        case notSealed = "not_sealed"
        /// No registration has the key it names, or too many were being looked up.
        case unknownSession = "unknown_session"
        /// The tag did not match: tampered with, or sealed with another key, scene or device.
        case notAuthentic = "not_authentic"
        case replayed
        /// Its counter is further behind the newest than the replay window reaches.
        case tooOld = "too_old"
        /// Authentic, but the event names another scene than its session's.
        case wrongScene = "wrong_scene"
        /// The original's AES-256-CBC mode: not base64 of a ciphertext that decrypts with the key.
        case notDecrypted = "not_decrypted"
    }

    public let received: Counter
    public let stale: Counter
    /// Over the device's event rate (``EventRateLimit``).
    public let rateLimited: Counter
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
    private let sealDrops: [SealDrop: Counter]
    private let evictions: [Table: Counter]

    /// - Parameter factory: the process's metrics system, or a test's.
    public init(transport: Transport = .udp, factory: any MetricsFactory = MetricsSystem.factory) {
        let prefix = "aesel_\(transport.rawValue)"
        func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
            Counter(label: label, dimensions: dimensions, factory: factory)
        }
        received = counter("\(prefix)_received_total")
        stale = counter("\(prefix)_dropped_total", [("reason", "stale")])
        rateLimited = counter("\(prefix)_dropped_total", [("reason", "rate_limited")])
        locked = counter("\(prefix)_dropped_total", [("reason", "locked")])
        notInScene = counter("\(prefix)_dropped_total", [("reason", "not_in_scene")])
        sceneLoading = counter("\(prefix)_dropped_total", [("reason", "scene_loading")])
        actionBacklog = counter("\(prefix)_dropped_total", [("reason", "action_backlog")])
        actionRefused = counter("\(prefix)_dropped_total", [("reason", "action_refused")])
        readErrors = counter("\(prefix)_read_errors_total")
        keepalives = counter("\(prefix)_keepalives_total")
        malformedKeepalives = counter("\(prefix)_dropped_total", [("reason", "malformed_keepalive")])
        keepalivesLimited = counter("\(prefix)_dropped_total", [("reason", "keepalive_limit")])
        persisted = counter("aesel_persisted_transforms_total")
        persistFailures = counter("aesel_persist_failures_total")
        storeUnavailable = counter("aesel_store_unavailable_total")
        decodeDrops = Dictionary(uniqueKeysWithValues: EventDecodeError.allCases.map { ($0, counter("\(prefix)_dropped_total", [("reason", $0.label)])) })
        sealDrops = Dictionary(uniqueKeysWithValues: SealDrop.allCases.map { ($0, counter("\(prefix)_dropped_total", [("reason", $0.rawValue)])) })
        evictions = Dictionary(uniqueKeysWithValues: Table.allCases.map { ($0, counter("aesel_state_evictions_total", [("table", $0.rawValue)])) })
    }

    func dropped(_ reason: EventDecodeError) {
        decodeDrops[reason]?.increment()
    }

    func dropped(_ reason: SealDrop) {
        sealDrops[reason]?.increment()
    }

    public func evicted(_ count: Int, from table: Table) {
        evictions[table]?.increment(by: count)
    }
}
