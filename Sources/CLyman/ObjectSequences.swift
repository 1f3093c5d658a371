import NIOCore

/// The newest sequence number accepted per object, so that an older or repeated numbered event is
/// dropped as stale. Only accepted events advance it.
///
/// It cannot be poisoned for good: an event far behind the newest (more than `reorderWindow`) is taken
/// as a sender that started counting again, not as a late one, and an object's number is forgotten after
/// `memory` without events. Its size is bounded: when full it forgets idle objects, then everything.
struct ObjectSequences {
    struct Configuration {
        /// How far behind the newest number an event may be and still be a late one, i.e. stale.
        var reorderWindow: UInt64 = 1024
        var memory = TimeAmount.seconds(10)
        var capacity = 1 << 18
    }

    private struct Newest {
        var sequence: UInt64
        var acceptedAt: NIODeadline
    }

    let configuration: Configuration
    private var newest: [String: Newest] = [:]

    init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    var count: Int { newest.count }

    /// Whether a numbered event (`sequence` > 0) is new; if so it becomes the object's newest.
    /// - Returns: whether to accept it, and how many entries a full table forgot to make room.
    mutating func accept(objectKey: String, sequence: UInt64, now: NIODeadline) -> (accepted: Bool, evicted: Int) {
        if let last = newest[objectKey], sequence <= last.sequence, last.sequence - sequence < configuration.reorderWindow,
            now - last.acceptedAt < configuration.memory
        {
            return (false, 0)
        }
        var evicted = 0
        if newest[objectKey] == nil, newest.count >= configuration.capacity {
            evicted = newest.count
            let memory = configuration.memory
            newest = newest.filter { now - $0.value.acceptedAt < memory }
            if newest.count >= configuration.capacity { newest.removeAll(keepingCapacity: true) }
            evicted -= newest.count
        }
        newest[objectKey] = Newest(sequence: sequence, acceptedAt: now)
        return (true, evicted)
    }
}
