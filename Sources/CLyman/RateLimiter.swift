import NIOCore

/// A rate limit: at most `perSecond` a second, after a burst of `burst`. The generic cell rate algorithm:
/// one deadline, no timer. Pure; the ingest handler keeps its limiters on its event loop.
struct RateLimiter {
    /// Keepalive answers, so that a flood of keepalives (forged sources and all) costs CLyman a bounded
    /// share of its event loop and of its upstream: enough for 5,000 quiet devices at the SDK's default
    /// of one keepalive per 100 ms.
    static let keepaliveAnswers = RateLimiter(perSecond: 50_000, burst: 5_000)

    private let interval: TimeAmount
    private let tolerance: TimeAmount
    /// When the next one would be due if they came at exactly the allowed rate.
    private var due: NIODeadline = .uptimeNanoseconds(0)

    init(perSecond: Int, burst: Int) {
        interval = .nanoseconds(1_000_000_000 / Int64(max(perSecond, 1)))
        tolerance = .nanoseconds(interval.nanoseconds * Int64(max(burst, 1) - 1))
    }

    /// Whether one more may pass at `now`; counts it if so.
    mutating func allow(now: NIODeadline) -> Bool {
        let start = max(due, now)
        guard start - now <= tolerance else { return false }
        due = start + interval
        return true
    }
}

/// Who sent an event, as far as rate limits and sequence numbers go: a sealed datagram's session, a
/// plaintext datagram's source address, or a WebSocket device's key (its connection was authenticated).
enum EventSender: Hashable {
    case session(UInt64)
    case address(SocketAddress)
    case webSocket(deviceKey: String)
}

/// Each device's event rate limit (`--event-rate`, `--event-burst`), per ``EventSender``. Senders come
/// from datagrams, so the table is bounded: a full table starts again empty (counted as evictions), which
/// can only let a sender through early.
struct DeviceRateLimits {
    static let maximumSenders = 65_536

    let perSecond: Int
    let burst: Int
    private var limiters: [EventSender: RateLimiter] = [:]

    /// - Parameter perSecond: 0 for no limit.
    init(perSecond: Int, burst: Int) {
        self.perSecond = perSecond
        self.burst = burst
    }

    /// Whether the sender's event may pass at `now`, and how many senders a full table forgot.
    mutating func allow(_ sender: EventSender, now: NIODeadline) -> (allowed: Bool, evicted: Int) {
        guard perSecond > 0 else { return (true, 0) }
        var evicted = 0
        if limiters[sender] == nil, limiters.count >= Self.maximumSenders {
            evicted = limiters.count
            limiters.removeAll(keepingCapacity: true)
        }
        let allowed = limiters[sender, default: RateLimiter(perSecond: perSecond, burst: burst)].allow(now: now)
        return (allowed, evicted)
    }
}

/// How many events a second each device may send, after a burst (`--event-rate`, `--event-burst`).
public struct EventRateLimit: Sendable, Hashable {
    public var perSecond: Int
    public var burst: Int

    public static let none = EventRateLimit(perSecond: 0, burst: 0)
    /// Well above a pose stream (60-120 updates a second for each of a few objects), far below a flood.
    public static let standard = EventRateLimit(perSecond: 2_000, burst: 500)

    /// - Parameter perSecond: 0 for no limit.
    public init(perSecond: Int, burst: Int) {
        self.perSecond = perSecond
        self.burst = burst
    }
}
