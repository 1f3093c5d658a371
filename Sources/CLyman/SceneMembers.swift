import AeselModel
public import AeselStore
import NIOCore
import NIOConcurrencyHelpers

/// Which objects and properties each scene holds, in memory, so that the UDP path drops an event for an
/// object outside the scene it names without a store read.
///
/// A scene is loaded from the store on its first event, or earlier when this process creates an object
/// in it (``prefetch(_:)``); until the load ends the caller holds that scene's events. A key the loaded scene lacks may have been created by another process: it starts one
/// reload (at most every `missReloadInterval`), and its events wait for it. Every entry is reloaded in
/// the background after `refreshInterval`. This process's own object routes update entries at once.
/// Entries are keyed by input, so their number is bounded, and so is the number of loads in flight.
public final class SceneMembers: Sendable {
    public struct Configuration: Sendable {
        public var maximumScenes = 10_000
        public var maximumConcurrentLoads = 16
        public var refreshInterval = TimeAmount.seconds(5)
        public var missReloadInterval = TimeAmount.milliseconds(250)
        /// Scenes without an event for this long are the first to go when the table is full.
        public var idleLimit = TimeAmount.seconds(60)

        public init() {}
    }

    public enum Verdict: Equatable {
        case member
        case notMember
        /// The scene's members are loading: the caller holds the event until its load listener runs.
        case hold
        /// Too many scenes are loading, or the table is full of loading scenes: the event is dropped.
        case overloaded
    }

    /// Reads a scene's keys from the store.
    public typealias Loader = @Sendable (_ sceneKey: String) async throws -> SceneMemberKeys
    /// Told each load's answer (nil when it failed); it must pass it to ``finishLoad(sceneKey:keys:now:)``,
    /// on the thread that checks events, so that no event overtakes the ones held for the load.
    public typealias LoadListener = @Sendable (_ sceneKey: String, _ keys: SceneMemberKeys?) -> Void

    /// A change this process made, applied at once, and again over a load that was reading meanwhile.
    public enum Change: Sendable {
        case added(key: String, kind: EventKind)
        case removed(key: String, kind: EventKind)
    }

    struct Entry {
        var keys = SceneMemberKeys()
        var loaded = false
        var loading = false
        var loadedAt = NIODeadline.uptimeNanoseconds(0)
        var lastUsed: NIODeadline
        /// Changes made while a load is reading, re-applied over its answer.
        var changesDuringLoad: [Change] = []

        func contains(_ key: String, _ kind: EventKind) -> Bool {
            switch kind {
            case .objectUpdate: keys.objects.contains(key)
            case .propertyUpdate: keys.properties.contains(key)
            }
        }

        mutating func apply(_ change: Change) {
            switch change {
            case .added(let key, .objectUpdate): keys.objects.insert(key)
            case .added(let key, .propertyUpdate): keys.properties.insert(key)
            case .removed(let key, .objectUpdate): keys.objects.remove(key)
            case .removed(let key, .propertyUpdate): keys.properties.remove(key)
            }
            if loading { changesDuringLoad.append(change) }
        }
    }

    struct State {
        var entries: [String: Entry] = [:]
        var loadsInFlight = 0
    }

    let configuration: Configuration
    private let state = NIOLockedValueBox(State())
    private let metrics: IngestMetrics
    private let loader: Loader
    private let listener = NIOLockedValueBox<LoadListener?>(nil)

    public init(configuration: Configuration = .init(), metrics: IngestMetrics, loader: @escaping Loader) {
        self.configuration = configuration
        self.metrics = metrics
        self.loader = loader
    }

    /// Sets who installs load answers (the ingest handler, on its event loop). Until then they install
    /// themselves.
    public func onLoad(_ listener: @escaping LoadListener) {
        self.listener.withLockedValue { $0 = listener }
    }

    /// Starts loading a scene this process is about to see events of, unless it is known or loading.
    public func prefetch(_ sceneKey: String) {
        let start = state.withLockedValue { state -> Bool in
            guard state.entries[sceneKey] == nil, state.loadsInFlight < configuration.maximumConcurrentLoads,
                state.entries.count < configuration.maximumScenes
            else { return false }
            state.loadsInFlight += 1
            state.entries[sceneKey] = Entry(loading: true, lastUsed: .now())
            return true
        }
        if start { load(sceneKey) }
    }

    private func load(_ sceneKey: String) {
        // Unstructured on purpose: the hot path cannot await. The task ends with the store call.
        Task {
            let keys = try? await loader(sceneKey)
            if let listener = listener.withLockedValue({ $0 }) {
                listener(sceneKey, keys)
            } else {
                finishLoad(sceneKey: sceneKey, keys: keys)
            }
        }
    }

    /// Whether the event may act in the scene it names; starts the loads it needs. Called on the hot path.
    public func check(objectKey: String, kind: EventKind, sceneKey: String, now: NIODeadline = .now()) -> Verdict {
        let (verdict, startLoad, evicted) = state.withLockedValue { state -> (Verdict, Bool, Int) in
            let canLoad = state.loadsInFlight < configuration.maximumConcurrentLoads
            guard var entry = state.entries[sceneKey] else {
                guard canLoad else { return (.overloaded, false, 0) }
                let evicted = state.entries.count >= configuration.maximumScenes ? Self.evict(&state, now: now, limit: configuration) : 0
                guard state.entries.count < configuration.maximumScenes else { return (.overloaded, false, evicted) }
                state.loadsInFlight += 1
                state.entries[sceneKey] = Entry(loading: true, lastUsed: now)
                return (.hold, true, evicted)
            }
            entry.lastUsed = now
            let verdict: Verdict
            var startLoad = false
            if entry.contains(objectKey, kind) {
                // Stale-while-revalidate: members keep flowing while a refresh reads.
                startLoad = canLoad && !entry.loading && now - entry.loadedAt > configuration.refreshInterval
                verdict = .member
            } else if entry.loading {
                verdict = .hold
            } else if canLoad, now - entry.loadedAt > configuration.missReloadInterval {
                startLoad = true
                verdict = .hold
            } else {
                verdict = .notMember
            }
            if startLoad {
                entry.loading = true
                state.loadsInFlight += 1
            }
            state.entries[sceneKey] = entry
            return (verdict, startLoad, 0)
        }
        if evicted > 0 { metrics.evicted(evicted, from: .sceneMembers) }
        if startLoad { load(sceneKey) }
        return verdict
    }

    /// Installs a load's answer (nil: it failed, and the scene is forgotten so its next event tries
    /// again). The caller then checks the events it held, in order.
    func finishLoad(sceneKey: String, keys: SceneMemberKeys?, now: NIODeadline = .now()) {
        state.withLockedValue { state in
            state.loadsInFlight -= 1
            guard var entry = state.entries[sceneKey], entry.loading else { return }
            guard let keys else {
                state.entries[sceneKey] = entry.loaded ? Self.refreshFailed(entry, now: now) : nil
                return
            }
            let changes = entry.changesDuringLoad
            entry.keys = keys
            entry.loading = false
            entry.loaded = true
            entry.loadedAt = now
            entry.changesDuringLoad = []
            for change in changes { entry.apply(change) }
            state.entries[sceneKey] = entry
        }
    }

    /// A refresh that failed keeps the keys it had, until the next refresh interval.
    private static func refreshFailed(_ entry: Entry, now: NIODeadline) -> Entry {
        var entry = entry
        entry.loading = false
        entry.loadedAt = now
        entry.changesDuringLoad = []
        return entry
    }

    /// An object or property was created in `sceneKey` through this process.
    public func added(_ key: String, kind: EventKind, to sceneKey: String) {
        state.withLockedValue { $0.entries[sceneKey]?.apply(.added(key: key, kind: kind)) }
    }

    /// An object or property of `sceneKey` was deleted through this process.
    public func removed(_ key: String, kind: EventKind, from sceneKey: String) {
        state.withLockedValue { $0.entries[sceneKey]?.apply(.removed(key: key, kind: kind)) }
    }

    /// An object or property may have moved to `sceneKey` (its old scene is not known): it leaves every
    /// other scene. Rare (an update naming a scene), so a scan of the table is fine.
    public func moved(_ key: String, kind: EventKind, to sceneKey: String) {
        state.withLockedValue { state in
            for (scene, entry) in state.entries where scene != sceneKey && entry.contains(key, kind) {
                state.entries[scene]?.apply(.removed(key: key, kind: kind))
            }
            state.entries[sceneKey]?.apply(.added(key: key, kind: kind))
        }
    }

    /// Makes room in a full table: first scenes idle past the limit, then scenes without members (what a
    /// flood of made-up scene keys leaves), then every scene that is not loading. Returns how many went.
    private static func evict(_ state: inout State, now: NIODeadline, limit: Configuration) -> Int {
        let before = state.entries.count
        state.entries = state.entries.filter { $0.value.loading || now - $0.value.lastUsed <= limit.idleLimit }
        if state.entries.count >= limit.maximumScenes {
            state.entries = state.entries.filter { $0.value.loading || !$0.value.keys.objects.isEmpty || !$0.value.keys.properties.isEmpty }
        }
        if state.entries.count >= limit.maximumScenes {
            state.entries = state.entries.filter { $0.value.loading }
        }
        return before - state.entries.count
    }

    /// How many scenes the table holds, for tests and metrics.
    public var count: Int { state.withLockedValue { $0.entries.count } }
}
