/// The counters a receiver has accepted from one sender (RFC 4303's sliding window, 1,024 wide): a
/// counter is fresh when it is above the newest, or within the window below it and not seen yet.
/// Counters start at 1; 0 is never fresh.
public struct ReplayWindow: Sendable {
    public static let width: UInt64 = 1024

    public enum Verdict: Sendable, Equatable {
        case fresh
        case replayed
        /// More than ``ReplayWindow/width`` below the newest: it cannot be told from a replay.
        case tooOld
    }

    private var newest: UInt64 = 0
    /// Bit `c % width` is set when counter `c`, within the window, was accepted.
    private var seen = InlineArray<16, UInt64>(repeating: 0)

    public init() {}

    public func check(_ counter: UInt64) -> Verdict {
        if counter > newest { return .fresh }
        if counter == 0 || newest - counter >= Self.width { return .tooOld }
        return isSeen(counter) ? .replayed : .fresh
    }

    /// Records a counter ``check(_:)`` found fresh, once its datagram proved authentic.
    public mutating func accept(_ counter: UInt64) {
        if counter > newest {
            if counter - newest >= Self.width {
                seen = InlineArray(repeating: 0)
            } else {
                var cleared = newest + 1
                while cleared < counter {
                    setSeen(cleared, false)
                    cleared += 1
                }
            }
            newest = counter
        }
        setSeen(counter, true)
    }

    private func isSeen(_ counter: UInt64) -> Bool {
        let bit = counter % Self.width
        return seen[Int(bit / 64)] & (1 << (bit % 64)) != 0
    }

    private mutating func setSeen(_ counter: UInt64, _ value: Bool) {
        let bit = counter % Self.width
        let mask: UInt64 = 1 << (bit % 64)
        if value { seen[Int(bit / 64)] |= mask } else { seen[Int(bit / 64)] &= ~mask }
    }
}
