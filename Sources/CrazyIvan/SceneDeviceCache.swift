public import AeselModel
public import AeselSealing
public import CoreMetrics
public import NIOCore
import NIOConcurrencyHelpers

/// A device as the fan-out sees it: where to send, in which format, and with sealed events how to seal.
public struct Recipient: Sendable, Hashable {
    public var deviceKey: String
    public var address: SocketAddress
    public var format: EventFormat
    /// Nil for a device registered with plaintext events.
    public var sealer: SessionSealer?

    public init(deviceKey: String, address: SocketAddress, format: EventFormat, sealer: SessionSealer? = nil) {
        self.deviceKey = deviceKey
        self.address = address
        self.format = format
        self.sealer = sealer
    }

    /// Nil for a hostname that is not an IP literal (or `localhost`), or a port out of range: the fan-out
    /// never resolves names.
    public init?(_ device: Device, inScene sceneKey: String) {
        guard let address = SocketAddress.validated(host: device.hostname, port: device.port) else { return nil }
        let sealer = device.sessionKey.map { SessionSealer.shared($0, direction: .toDevice, sceneKey: sceneKey, deviceKey: device.key) }
        self.init(deviceKey: device.key, address: address, format: device.format, sealer: sealer)
    }

    public static func == (lhs: Recipient, rhs: Recipient) -> Bool {
        lhs.deviceKey == rhs.deviceKey && lhs.address == rhs.address && lhs.format == rhs.format && lhs.sealer?.cipher.keyID == rhs.sealer?.cipher.keyID
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(deviceKey)
        hasher.combine(address)
        hasher.combine(format)
        hasher.combine(sealer?.cipher.keyID)
    }
}

/// CrazyIvan's Scene-Device cache (DESIGN.md section 4): scene key to an immutable list of recipients.
///
/// The hot path takes the lock only to copy out the list (a reference-counted array); nothing is sent under
/// it. Registrations apply at once. An entry lives for the time to live from its load, then reloads on its
/// next event (or leaves memory when none comes); the scenes of the pair's region are pinned and never
/// expire. A scene not cached is loaded from the store on its first event. While it loads, its events are
/// held (bounded), or with ``Configuration/forwardWhileLoading`` sent at once to the devices known so far.
/// When a load of a holding scene ends, the scene replays: its held events are taken out in batches and
/// sent while later events still queue behind them, and it becomes ready only when nothing is left, so no
/// event overtakes an earlier one. Background refreshes never overwrite a change made after they started
/// reading.
public final class SceneDeviceCache: Sendable {
    /// The cache's settings, and its refresher's (``SceneCacheRefresher``).
    public struct Configuration: Sendable {
        /// How long an entry lives from its load; the next event after that reloads it.
        public var timeToLive: Duration
        /// Time between background refreshes of the live entries from the store.
        public var refreshInterval: Duration
        /// While a scene loads, send its events at once to the devices known so far (those registered
        /// meanwhile, and for a reload those of the expired entry) instead of holding them for the load.
        public var forwardWhileLoading: Bool
        /// The pair's region: its scenes are loaded at start and never expire. Nil: none are pinned.
        public var pinnedRegion: String?

        public init(timeToLive: Duration = .seconds(300), refreshInterval: Duration = .seconds(2), forwardWhileLoading: Bool = false, pinnedRegion: String? = nil) {
            self.timeToLive = timeToLive
            self.refreshInterval = refreshInterval
            self.forwardWhileLoading = forwardWhileLoading
            self.pinnedRegion = pinnedRegion
        }
    }

    /// Events held per scene while it loads; more are dropped.
    static let maximumPendingEvents = 256
    /// How long a scene the store does not know is remembered as unknown.
    static let unknownSceneTTL = TimeAmount.seconds(1)
    /// Scene keys come from events, so the number of entries is bounded; a full table evicts.
    public static let maximumScenes = 20_000
    /// Pinned scenes are refreshed like any other, so a region with more keeps only the first (by key) pinned.
    public static let maximumPinnedScenes = 1_000

    public enum Change: Sendable {
        case register(Recipient)
        case deregister(deviceKey: String)
    }

    public enum Lookup {
        case deliver([Recipient])
        /// Held until the scene is loaded.
        case queued
        /// The first event of an uncached (or expired) scene: the caller starts the load; the event is held.
        case startLoad
        /// As ``startLoad``, when forwarding while loading: the event goes to these devices now.
        case deliverAndLoad([Recipient])
        case unknownScene
        case pendingOverflow
    }

    enum Entry {
        case ready(recipients: [Recipient], version: UInt64, expires: NIODeadline)
        /// `known`: the devices an event goes to meanwhile when forwarding while loading, and those a
        /// reload (of an expired entry) keeps serving if the store fails.
        case loading(pending: [ChangeEvent], changes: [Change], known: [Recipient], isReload: Bool)
        /// Loaded; `pending` still waits to be sent, ahead of any later event.
        case replaying(recipients: [Recipient], pending: [ChangeEvent], version: UInt64)
        case unknown(until: NIODeadline)
    }

    struct State {
        var entries: [String: Entry] = [:]
        var pinned: Set<String> = []
        /// Versions are unique across the table, so a refresh that read an entry before it was reloaded
        /// never matches the reloaded one.
        var lastVersion: UInt64 = 0

        mutating func nextVersion() -> UInt64 {
            lastVersion += 1
            return lastVersion
        }
    }

    private let state = NIOLockedValueBox(State())
    private let timeToLive: TimeAmount
    private let forwardWhileLoading: Bool
    private let evictions: Counter

    public init(
        configuration: Configuration = .init(),
        evictions: Counter = Counter(label: "aesel_state_evictions_total", dimensions: [("table", "scene_devices")])
    ) {
        timeToLive = TimeAmount(configuration.timeToLive)
        forwardWhileLoading = configuration.forwardWhileLoading
        self.evictions = evictions
    }

    public func lookup(_ event: ChangeEvent) -> Lookup {
        let now = NIODeadline.now()
        var evicted = 0
        defer { if evicted > 0 { evictions.increment(by: evicted) } }
        return state.withLockedValue { state in
            switch state.entries[event.sceneKey] {
            case .ready(let recipients, _, let expires) where now < expires:
                return .deliver(recipients)
            case .ready(let recipients, _, _):
                return startLoad(event, known: recipients, isReload: true, in: &state)
            case .loading(_, _, let known, _) where forwardWhileLoading:
                return .deliver(known)
            case .loading(let pending, _, _, _) where pending.count >= Self.maximumPendingEvents:
                return .pendingOverflow
            case .loading(var pending, let changes, let known, let isReload):
                state.entries[event.sceneKey] = nil  // drop the stored copy so the append does not copy the array
                pending.append(event)
                state.entries[event.sceneKey] = .loading(pending: pending, changes: changes, known: known, isReload: isReload)
                return .queued
            case .replaying(let recipients, var pending, let version):
                guard pending.count < Self.maximumPendingEvents else { return .pendingOverflow }
                state.entries[event.sceneKey] = nil
                pending.append(event)
                state.entries[event.sceneKey] = .replaying(recipients: recipients, pending: pending, version: version)
                return .queued
            case .unknown(let until) where now < until:
                return .unknownScene
            case .unknown:
                return startLoad(event, known: [], isReload: false, in: &state)
            case nil:
                if state.entries.count >= Self.maximumScenes { evicted = Self.evict(&state, now: now) }
                guard state.entries.count < Self.maximumScenes else { return .pendingOverflow }
                return startLoad(event, known: [], isReload: false, in: &state)
            }
        }
    }

    private func startLoad(_ event: ChangeEvent, known: [Recipient], isReload: Bool, in state: inout State) -> Lookup {
        state.entries[event.sceneKey] = .loading(pending: forwardWhileLoading ? [] : [event], changes: [], known: known, isReload: isReload)
        return forwardWhileLoading ? .deliverAndLoad(known) : .startLoad
    }

    /// Makes room in a full table: unknown and expired scenes first, then every scene neither loading nor
    /// pinned (they reload on their next event). Returns how many went.
    private static func evict(_ state: inout State, now: NIODeadline) -> Int {
        let before = state.entries.count
        state.entries = state.entries.filter { _, entry in
            switch entry {
            case .ready(_, _, let expires): now < expires
            case .loading, .replaying: true
            case .unknown: false
            }
        }
        if state.entries.count >= maximumScenes {
            let pinned = state.pinned
            state.entries = state.entries.filter { key, entry in
                if case .ready = entry { pinned.contains(key) } else { true }
            }
        }
        return before - state.entries.count
    }

    /// Marks an uncached scene as loading, so that changes and events from now on wait for the load.
    /// Returns false when the scene is cached or already loading.
    public func beginLoad(sceneKey: String) -> Bool {
        state.withLockedValue { state in
            switch state.entries[sceneKey] {
            case .ready, .loading, .replaying: return false
            case .unknown, nil:
                state.entries[sceneKey] = .loading(pending: [], changes: [], known: [], isReload: false)
                return true
            }
        }
    }

    /// Installs a loaded scene, which then replays what was held (``nextReplay(sceneKey:)``). `devices` is
    /// nil when the store has no such scene; the held events are then returned, as unknown.
    public func finishLoad(sceneKey: String, devices: [Recipient]?) -> [ChangeEvent] {
        let now = NIODeadline.now()
        return state.withLockedValue { state in
            guard case .loading(let pending, let changes, _, _) = state.entries[sceneKey] else { return [] }
            guard let devices else {
                state.entries[sceneKey] = .unknown(until: now + Self.unknownSceneTTL)
                return pending
            }
            let recipients = changes.reduce(devices) { Self.apply($1, to: $0) }
            let version = state.nextVersion()
            if pending.isEmpty {
                state.entries[sceneKey] = .ready(recipients: recipients, version: version, expires: expiry(of: sceneKey, in: state, now: now))
            } else {
                state.entries[sceneKey] = .replaying(recipients: recipients, pending: pending, version: version)
            }
            return []
        }
    }

    /// The next held events of a replaying scene and its devices, to send in order before calling again;
    /// nil once none are left, and the scene is ready.
    public func nextReplay(sceneKey: String) -> (events: [ChangeEvent], recipients: [Recipient])? {
        let now = NIODeadline.now()
        return state.withLockedValue { state in
            guard case .replaying(let recipients, let pending, let version) = state.entries[sceneKey] else { return nil }
            if pending.isEmpty {
                state.entries[sceneKey] = .ready(recipients: recipients, version: version, expires: expiry(of: sceneKey, in: state, now: now))
                return nil
            }
            state.entries[sceneKey] = .replaying(recipients: recipients, pending: [], version: version)
            return (pending, recipients)
        }
    }

    private func expiry(of sceneKey: String, in state: State, now: NIODeadline) -> NIODeadline {
        state.pinned.contains(sceneKey) ? .distantFuture : now + timeToLive
    }

    /// After a failed load. A first load is forgotten, so the next event tries again, and its held events
    /// are returned, dropped. A reload keeps serving the devices the entry had, with the changes made
    /// meanwhile, for another time to live (the refresher brings it up to date once the store answers),
    /// and replays its held events to them (``nextReplay(sceneKey:)``): a failing store never empties a
    /// scene that was loaded.
    public func abandonLoad(sceneKey: String) -> [ChangeEvent] {
        state.withLockedValue { state in
            guard case .loading(let pending, _, let known, let isReload) = state.entries[sceneKey] else { return [] }
            guard isReload else {
                state.entries[sceneKey] = nil
                return pending
            }
            let version = state.nextVersion()
            state.entries[sceneKey] = .replaying(recipients: known, pending: pending, version: version)
            return []
        }
    }

    /// Applies a registration or deregistration at once. A scene the cache does not hold is left alone.
    public func apply(_ change: Change, sceneKey: String) {
        state.withLockedValue { state in
            switch state.entries[sceneKey] {
            case .ready(let recipients, _, let expires):
                let version = state.nextVersion()
                state.entries[sceneKey] = .ready(recipients: Self.apply(change, to: recipients), version: version, expires: expires)
            case .loading(let pending, var changes, let known, let isReload):
                changes.append(change)
                state.entries[sceneKey] = .loading(pending: pending, changes: changes, known: Self.apply(change, to: known), isReload: isReload)
            case .replaying(let recipients, let pending, _):
                let version = state.nextVersion()
                state.entries[sceneKey] = .replaying(recipients: Self.apply(change, to: recipients), pending: pending, version: version)
            case .unknown:
                state.entries[sceneKey] = nil  // the scene exists now
            case nil:
                break
            }
        }
    }

    /// Drops a scene; its next event loads it again (and finds it unknown if it is gone).
    public func forget(_ sceneKey: String) {
        state.withLockedValue { $0.entries[sceneKey] = nil }
    }

    /// The device registered in `sceneKey` at `address`, if the scene is cached.
    public func deviceKey(in sceneKey: String, at address: SocketAddress) -> String? {
        state.withLockedValue { state in
            switch state.entries[sceneKey] {
            case .ready(let recipients, _, _), .replaying(let recipients, _, _):
                return recipients.first { $0.address == address }?.deviceKey
            default:
                return nil
            }
        }
    }

    /// Forgets that a scene was unknown, so its next event loads it.
    public func sceneCreated(_ sceneKey: String) {
        state.withLockedValue { state in
            if case .unknown = state.entries[sceneKey] { state.entries[sceneKey] = nil }
        }
    }

    /// Pins exactly `sceneKeys` (at most ``maximumPinnedScenes``): they never expire. Scenes no longer
    /// pinned expire one time to live from now. Returns the pinned scenes not cached, to load now.
    public func pin(_ sceneKeys: Set<String>) -> [String] {
        let now = NIODeadline.now()
        return state.withLockedValue { state in
            let unpinned = state.pinned.subtracting(sceneKeys)
            state.pinned = sceneKeys
            for key in unpinned {
                if case .ready(let recipients, let version, _) = state.entries[key] {
                    state.entries[key] = .ready(recipients: recipients, version: version, expires: now + timeToLive)
                }
            }
            var missing: [String] = []
            for key in sceneKeys {
                switch state.entries[key] {
                case .ready(let recipients, let version, _):
                    state.entries[key] = .ready(recipients: recipients, version: version, expires: .distantFuture)
                case .loading, .replaying:
                    break  // pinned when it becomes ready
                case .unknown, nil:
                    missing.append(key)
                }
            }
            return missing
        }
    }

    /// The live entries and their versions, for a background refresh. Entries expired for longer than
    /// `grace` (one refresh interval: a scene with events reloads on its next one instead) leave memory.
    public func snapshotForRefresh(grace: TimeAmount) -> [(sceneKey: String, version: UInt64)] {
        let now = NIODeadline.now()
        return state.withLockedValue { state in
            var keys: [(String, UInt64)] = []
            for (key, entry) in state.entries {
                switch entry {
                case .ready(_, let version, let expires):
                    if now < expires {
                        keys.append((key, version))
                    } else if now - expires > grace {
                        state.entries[key] = nil
                    }
                case .unknown(let until) where now >= until:
                    state.entries[key] = nil
                default:
                    break
                }
            }
            return keys
        }
    }

    /// Installs a refreshed list unless a registration or a reload changed the scene since `version` was
    /// read. The entry keeps its expiry: a refresh keeps it current, not alive.
    public func finishRefresh(sceneKey: String, version: UInt64, devices: [Recipient]?) {
        state.withLockedValue { state in
            guard case .ready(let previous, let current, let expires) = state.entries[sceneKey], current == version else { return }
            if let devices {
                guard devices != previous else { return }  // nothing changed: keep the entry and its sealers
                let version = state.nextVersion()
                state.entries[sceneKey] = .ready(recipients: devices, version: version, expires: expires)
            } else {
                state.entries[sceneKey] = nil  // the scene was deleted
                state.pinned.remove(sceneKey)
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
