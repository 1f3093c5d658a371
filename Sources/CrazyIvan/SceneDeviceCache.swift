public import AeselModel
public import CoreMetrics
public import NIOCore
import NIOConcurrencyHelpers

/// A device as the fan-out sees it: where to send, and in which format.
public struct Recipient: Sendable, Hashable {
    public var deviceKey: String
    public var address: SocketAddress
    public var format: EventFormat

    public init(deviceKey: String, address: SocketAddress, format: EventFormat) {
        self.deviceKey = deviceKey
        self.address = address
        self.format = format
    }

    /// Nil for a hostname that is not an IP literal (or `localhost`), or a port out of range: the fan-out
    /// never resolves names.
    public init?(_ device: Device) {
        guard let address = SocketAddress.validated(host: device.hostname, port: device.port) else { return nil }
        self.init(deviceKey: device.key, address: address, format: device.format)
    }
}

/// CrazyIvan's Scene-Device cache (DESIGN.md section 4): scene key to an immutable list of recipients.
///
/// The hot path takes the lock only to copy out the list (a reference-counted array); nothing is sent under
/// it. Registrations apply at once. A scene not cached yet is loaded from the store on its first event;
/// events that arrive while it loads wait (bounded). When the load ends the scene replays: its held events
/// are taken out in batches and sent while later events still queue behind them, and it becomes ready only
/// when nothing is left, so no event overtakes an earlier one. Background refreshes never overwrite a
/// change made after they started reading.
public final class SceneDeviceCache: Sendable {
    /// Events held per scene while it loads; more are dropped.
    static let maximumPendingEvents = 256
    /// How long a scene the store does not know is remembered as unknown.
    static let unknownSceneTTL = TimeAmount.seconds(1)
    /// Scene keys come from events, so the number of entries is bounded; a full table evicts.
    static let maximumScenes = 20_000
    /// Scenes without events for this long are the first to be evicted from a full table.
    static let idleLimit = TimeAmount.seconds(60)

    public enum Change: Sendable {
        case register(Recipient)
        case deregister(deviceKey: String)
    }

    public enum Lookup {
        case deliver([Recipient])
        /// Held until the scene is loaded.
        case queued
        /// The first event of an uncached scene: the caller starts the load; the event is held.
        case startLoad
        case unknownScene
        case pendingOverflow
    }

    enum Entry {
        case ready(recipients: [Recipient], version: UInt64, lastUsed: NIODeadline)
        case loading(pending: [ChangeEvent], changes: [Change])
        /// Loaded; `pending` still waits to be sent, ahead of any later event.
        case replaying(recipients: [Recipient], pending: [ChangeEvent], version: UInt64)
        case unknown(until: NIODeadline)
    }

    private let entries = NIOLockedValueBox<[String: Entry]>([:])
    private let evictions: Counter

    public init(evictions: Counter = Counter(label: "aesel_state_evictions_total", dimensions: [("table", "scene_devices")])) {
        self.evictions = evictions
    }

    public func lookup(_ event: ChangeEvent) -> Lookup {
        let now = NIODeadline.now()
        var evicted = 0
        defer { if evicted > 0 { evictions.increment(by: evicted) } }
        return entries.withLockedValue { entries in
            switch entries[event.sceneKey] {
            case .ready(let recipients, let version, _):
                entries[event.sceneKey] = .ready(recipients: recipients, version: version, lastUsed: now)
                return .deliver(recipients)
            case .loading(var pending, let changes):
                guard pending.count < Self.maximumPendingEvents else { return .pendingOverflow }
                entries[event.sceneKey] = nil  // drop the stored copy so the append does not copy the array
                pending.append(event)
                entries[event.sceneKey] = .loading(pending: pending, changes: changes)
                return .queued
            case .replaying(let recipients, var pending, let version):
                guard pending.count < Self.maximumPendingEvents else { return .pendingOverflow }
                entries[event.sceneKey] = nil
                pending.append(event)
                entries[event.sceneKey] = .replaying(recipients: recipients, pending: pending, version: version)
                return .queued
            case .unknown(let until) where now < until:
                return .unknownScene
            case .unknown:
                entries[event.sceneKey] = .loading(pending: [event], changes: [])
                return .startLoad
            case nil:
                if entries.count >= Self.maximumScenes { evicted = Self.evict(&entries, now: now) }
                guard entries.count < Self.maximumScenes else { return .pendingOverflow }
                entries[event.sceneKey] = .loading(pending: [event], changes: [])
                return .startLoad
            }
        }
    }

    /// Makes room in a full table: unknown scenes and idle ones first, then every scene not loading
    /// (they reload on their next event). Returns how many went.
    private static func evict(_ entries: inout [String: Entry], now: NIODeadline) -> Int {
        let before = entries.count
        entries = entries.filter { _, entry in
            switch entry {
            case .ready(_, _, let lastUsed): now - lastUsed <= idleLimit
            case .loading, .replaying: true
            case .unknown: false
            }
        }
        if entries.count >= maximumScenes {
            entries = entries.filter { if case .ready = $0.value { false } else { true } }
        }
        return before - entries.count
    }

    /// Marks an uncached scene as loading, so that changes and events from now on wait for the load.
    /// Returns false when the scene is cached or already loading.
    public func beginLoad(sceneKey: String) -> Bool {
        entries.withLockedValue { entries in
            switch entries[sceneKey] {
            case .ready, .loading, .replaying: return false
            case .unknown, nil:
                entries[sceneKey] = .loading(pending: [], changes: [])
                return true
            }
        }
    }

    /// Installs a loaded scene, which then replays what was held (``nextReplay(sceneKey:)``). `devices` is
    /// nil when the store has no such scene; the held events are then returned, as unknown.
    public func finishLoad(sceneKey: String, devices: [Recipient]?) -> [ChangeEvent] {
        entries.withLockedValue { entries in
            guard case .loading(let pending, let changes) = entries[sceneKey] else { return [] }
            guard let devices else {
                entries[sceneKey] = .unknown(until: .now() + Self.unknownSceneTTL)
                return pending
            }
            let recipients = changes.reduce(devices) { Self.apply($1, to: $0) }
            entries[sceneKey] = .replaying(recipients: recipients, pending: pending, version: 0)
            return []
        }
    }

    /// The next held events of a replaying scene and its devices, to send in order before calling again;
    /// nil once none are left, and the scene is ready.
    public func nextReplay(sceneKey: String) -> (events: [ChangeEvent], recipients: [Recipient])? {
        entries.withLockedValue { entries in
            guard case .replaying(let recipients, let pending, let version) = entries[sceneKey] else { return nil }
            if pending.isEmpty {
                entries[sceneKey] = .ready(recipients: recipients, version: version, lastUsed: .now())
                return nil
            }
            entries[sceneKey] = .replaying(recipients: recipients, pending: [], version: version)
            return (pending, recipients)
        }
    }

    /// Forgets a failed load so the next event tries again; returns the held events.
    public func abandonLoad(sceneKey: String) -> [ChangeEvent] {
        entries.withLockedValue { entries in
            guard case .loading(let pending, _) = entries[sceneKey] else { return [] }
            entries[sceneKey] = nil
            return pending
        }
    }

    /// Applies a registration or deregistration at once. A scene the cache does not hold is left alone.
    public func apply(_ change: Change, sceneKey: String) {
        entries.withLockedValue { entries in
            switch entries[sceneKey] {
            case .ready(let recipients, let version, let lastUsed):
                entries[sceneKey] = .ready(recipients: Self.apply(change, to: recipients), version: version + 1, lastUsed: lastUsed)
            case .loading(let pending, var changes):
                changes.append(change)
                entries[sceneKey] = .loading(pending: pending, changes: changes)
            case .replaying(let recipients, let pending, let version):
                entries[sceneKey] = .replaying(recipients: Self.apply(change, to: recipients), pending: pending, version: version + 1)
            case .unknown:
                entries[sceneKey] = nil  // the scene exists now
            case nil:
                break
            }
        }
    }

    /// Drops a scene; its next event loads it again (and finds it unknown if it is gone).
    public func forget(_ sceneKey: String) {
        entries.withLockedValue { $0[sceneKey] = nil }
    }

    /// The device registered in `sceneKey` at `address`, if the scene is cached.
    public func deviceKey(in sceneKey: String, at address: SocketAddress) -> String? {
        entries.withLockedValue { entries in
            switch entries[sceneKey] {
            case .ready(let recipients, _, _), .replaying(let recipients, _, _):
                return recipients.first { $0.address == address }?.deviceKey
            default:
                return nil
            }
        }
    }

    /// Forgets that a scene was unknown, so its next event loads it.
    public func sceneCreated(_ sceneKey: String) {
        entries.withLockedValue { entries in
            if case .unknown = entries[sceneKey] { entries[sceneKey] = nil }
        }
    }

    /// The cached scenes and their versions, for a background refresh.
    public func snapshotForRefresh(idleLimit: TimeAmount) -> [(sceneKey: String, version: UInt64)] {
        let now = NIODeadline.now()
        return entries.withLockedValue { entries in
            var keys: [(String, UInt64)] = []
            for (key, entry) in entries {
                switch entry {
                case .ready(_, let version, let lastUsed):
                    if now - lastUsed > idleLimit {
                        entries[key] = nil  // time-expired: reloaded on its next event
                    } else {
                        keys.append((key, version))
                    }
                case .unknown(let until) where now >= until:
                    entries[key] = nil
                default:
                    break
                }
            }
            return keys
        }
    }

    /// Installs a refreshed list unless a registration changed the scene since `version` was read.
    public func finishRefresh(sceneKey: String, version: UInt64, devices: [Recipient]?) {
        entries.withLockedValue { entries in
            guard case .ready(_, let current, let lastUsed) = entries[sceneKey], current == version else { return }
            if let devices {
                entries[sceneKey] = .ready(recipients: devices, version: version + 1, lastUsed: lastUsed)
            } else {
                entries[sceneKey] = nil  // the scene was deleted
            }
        }
    }

    private static func apply(_ change: Change, to recipients: [Recipient]) -> [Recipient] {
        switch change {
        case .register(let recipient):
            return recipients.filter { $0.deviceKey != recipient.deviceKey } + [recipient]
        case .deregister(let deviceKey):
            return recipients.filter { $0.deviceKey != deviceKey }
        }
    }
}
