public import AeselStore
public import Logging
public import NIOCore
import NIOConcurrencyHelpers
public import ServiceLifecycle

/// Finds which registered device sent a datagram: CrazyIvan's Scene-Device cache answers in one process.
public protocol SenderDirectory: Sendable {
    /// The device registered in the scene at `address`; nil when there is none, or when the scene is not
    /// loaded yet, in which case the directory starts loading it.
    func deviceKey(in sceneKey: String, at address: SocketAddress) -> String?
}

/// The locked objects and their owners, mirrored from the store so the UDP path can refuse a locked
/// object's events from other devices without a query. This process's lock routes apply their changes at
/// once; ``LockRefresher`` brings in every other process's, so the mirror holds the whole cluster's locks
/// (whichever pair serves a scene tomorrow already has them).
public final class ObjectLocks: Sendable {
    struct State {
        var owners: [String: String] = [:]
        /// Changes made here while a reload reads the store, re-applied over its answer (which may
        /// predate them); nil while no reload runs.
        var changesDuringReload: [(objectKey: String, owner: String)]?
    }

    private let state = NIOLockedValueBox(State())

    public init(_ locks: [ObjectLock] = []) {
        state.withLockedValue { $0.owners = Self.owners(locks) }
    }

    /// Called on the hot path.
    public func owner(of objectKey: String) -> String? {
        state.withLockedValue { $0.owners.isEmpty ? nil : $0.owners[objectKey] }
    }

    /// A change this process committed: `owner` empty for none.
    public func set(owner: String, of objectKey: String) {
        state.withLockedValue { state in
            Self.apply(owner, to: objectKey, in: &state.owners)
            state.changesDuringReload?.append((objectKey, owner))
        }
    }

    /// A reload is about to read the store.
    func reloadStarted() {
        state.withLockedValue { $0.changesDuringReload = [] }
    }

    /// Installs what the reload read (nil: it failed, and the mirror stays as it is).
    func reloadFinished(_ locks: [ObjectLock]?) {
        guard let locks else {
            state.withLockedValue { $0.changesDuringReload = nil }
            return
        }
        // Built outside the lock the UDP path takes; the old table, swapped out, is freed outside it too.
        var owners = Self.owners(locks)
        state.withLockedValue { state in
            for change in state.changesDuringReload ?? [] { Self.apply(change.owner, to: change.objectKey, in: &owners) }
            state.changesDuringReload = nil
            swap(&state.owners, &owners)
        }
    }

    private static func owners(_ locks: [ObjectLock]) -> [String: String] {
        Dictionary(locks.map { ($0.objectKey, $0.owner) }) { first, _ in first }
    }

    private static func apply(_ owner: String, to objectKey: String, in owners: inout [String: String]) {
        owners[objectKey] = owner.isEmpty ? nil : owner
    }
}

/// Reads every lock from the shared store every `interval` (50 ms), so a lock or unlock made through
/// any process sharing it is enforced here within about that long: through another pair, before or after
/// a failover, or by a tool writing the store. One indexed read of the locked rows, on every store.
public struct LockRefresher: Service {
    private let locks: ObjectLocks
    private let store: any AeselStore
    private let interval: Duration
    private let logger: Logger

    public init(locks: ObjectLocks, store: any AeselStore, interval: Duration = .milliseconds(50), logger: Logger) {
        self.locks = locks
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        var failing = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            if Task.isShuttingDownGracefully { break }
            locks.reloadStarted()
            do {
                locks.reloadFinished(try await store.objectLocks())
                failing = false
            } catch {
                locks.reloadFinished(nil)
                // Once per outage, not 20 times a second.
                if !failing { logger.info("lock reload failed; enforcing the locks last read", metadata: ["error": "\(error)"]) }
                failing = true
            }
        }
    }
}
