import NIOCore

/// A rate limit for keepalive answers: at most `perSecond` a second, after a burst of `burst`, so a
/// flood of keepalives (forged sources and all) costs CLyman a bounded share of its event loop and of
/// its upstream. The generic cell rate algorithm: one deadline, no timer. Pure; the ingest handler
/// keeps it on its event loop.
struct KeepaliveLimiter {
    /// Enough for 5,000 quiet devices at the SDK's default of one keepalive per 100 ms.
    static let standard = KeepaliveLimiter(perSecond: 50_000, burst: 5_000)

    private let interval: TimeAmount
    private let tolerance: TimeAmount
    /// When the next answer would be due if answers came at exactly the allowed rate.
    private var due: NIODeadline = .uptimeNanoseconds(0)

    init(perSecond: Int, burst: Int) {
        interval = .nanoseconds(1_000_000_000 / Int64(max(perSecond, 1)))
        tolerance = .nanoseconds(interval.nanoseconds * Int64(max(burst, 1) - 1))
    }

    /// Whether an answer may go out at `now`; counts it if so.
    mutating func allow(now: NIODeadline) -> Bool {
        let start = max(due, now)
        guard start - now <= tolerance else { return false }
        due = start + interval
        return true
    }
}
