import NIOCore

/// The newest sequence number accepted per sender and object, so that an older or repeated numbered
/// event is dropped as stale. Only a sender's own earlier events make its event stale: updates of
/// different devices apply in the order this pair receives them. Only accepted events advance it.
///
/// A datagram's sender is its source address; a WebSocket device's, its key. It cannot be poisoned for good: a larger epoch starts a new
/// count; an event far behind the newest (more than `reorderWindow`) is taken as a sender that started
/// counting again without one, not as a late one; and a number is forgotten after `memory` without events.
/// Its size is bounded: when full it forgets idle entries, then everything.
struct ObjectSequences {
    struct Configuration {
        /// How far behind the newest number an event may be and still be a late one, i.e. stale.
        var reorderWindow: UInt64 = 1024
        var memory = TimeAmount.seconds(10)
        var capacity = 1 << 18
    }

    private struct Sender: Hashable {
        var sender: EventSender
        var objectKey: String
    }

    private struct Newest {
        var epoch: UInt32
        var sequence: UInt64
        var acceptedAt: NIODeadline
    }

    let configuration: Configuration
    private var newest: [Sender: Newest] = [:]

    init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    var count: Int { newest.count }

    /// Whether a numbered event (`sequence` > 0) from `sender` is new; if so it becomes the newest.
    /// - Returns: whether to accept it, and how many entries a full table forgot to make room.
    mutating func accept(
        objectKey: String, from sender: EventSender, epoch: UInt32, sequence: UInt64, now: NIODeadline
    ) -> (accepted: Bool, evicted: Int) {
        let key = Sender(sender: sender, objectKey: objectKey)
        if let last = newest[key], now - last.acceptedAt < configuration.memory, isStale(epoch: epoch, sequence: sequence, after: last) {
            return (false, 0)
        }
        var evicted = 0
        if newest[key] == nil, newest.count >= configuration.capacity {
            evicted = newest.count
            let memory = configuration.memory
            newest = newest.filter { now - $0.value.acceptedAt < memory }
            if newest.count >= configuration.capacity { newest.removeAll(keepingCapacity: true) }
            evicted -= newest.count
        }
        newest[key] = Newest(epoch: epoch, sequence: sequence, acceptedAt: now)
        return (true, evicted)
    }

    private func isStale(epoch: UInt32, sequence: UInt64, after last: Newest) -> Bool {
        if epoch != last.epoch { return epoch < last.epoch }
        return sequence <= last.sequence && last.sequence - sequence < configuration.reorderWindow
    }
}
