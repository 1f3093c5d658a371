public import AeselModel
public import NIOCore
import Synchronization

/// CLyman's sealed-event sessions by key id: what a datagram's clear header names. A registration made in
/// this process installs its session at once; any other (another pair's, one from before a restart or a
/// failover) is read from the store on its first datagram, which waits for it. Entries read from the store
/// are read again in the background after ``refreshInterval``, so a key replaced or withdrawn elsewhere
/// stops working; a re-read that finds the same key keeps the entry, and so its replay window.
///
/// The tables are keyed by what datagrams contain, so they are bounded: at most ``maximumLoading`` reads
/// at once, unknown ids remembered for a second, and a full table starts again empty.
public final class EventSessions: Sendable {
    public enum Lookup {
        case found(SessionOpener)
        /// Read from the store now: hold the datagram until ``onLoad(_:)`` reports the id.
        case loading
        /// No registration has this key, or too many reads are in flight.
        case unknown
    }

    public typealias Loader = @Sendable (UInt64) async throws -> (sceneKey: String, device: Device)?

    public static let maximumSessions = 200_000
    public static let maximumLoading = 16
    static let unknownFor = TimeAmount.seconds(1)

    struct Entry {
        var opener: SessionOpener
        /// Nil for a session this process registered: it is current until replaced here.
        var refreshAt: NIODeadline?
    }

    struct State {
        var sessions: [UInt64: Entry] = [:]
        /// Each device's session, to replace it when the device registers again.
        var byDevice: [DeviceInScene: UInt64] = [:]
        var loading: Set<UInt64> = []
        var unknownUntil: [UInt64: NIODeadline] = [:]
        var onLoad: (@Sendable (UInt64) -> Void)?

        mutating func insert(_ opener: SessionOpener, refreshAt: NIODeadline?) -> Int {
            var evicted = 0
            if sessions.count >= EventSessions.maximumSessions {
                evicted = sessions.count
                sessions.removeAll(keepingCapacity: true)
                byDevice.removeAll(keepingCapacity: true)
            }
            let device = DeviceInScene(opener.cipher)
            if let previous = byDevice[device], previous != opener.cipher.keyID { sessions[previous] = nil }
            sessions[opener.cipher.keyID] = Entry(opener: opener, refreshAt: refreshAt)
            byDevice[device] = opener.cipher.keyID
            return evicted
        }

        mutating func remove(keyID: UInt64) {
            guard let entry = sessions.removeValue(forKey: keyID) else { return }
            let device = DeviceInScene(entry.opener.cipher)
            if byDevice[device] == keyID { byDevice[device] = nil }
        }
    }

    struct DeviceInScene: Hashable {
        var sceneKey: String
        var deviceKey: String

        init(_ cipher: SessionCipher) {
            sceneKey = cipher.sceneKey
            deviceKey = cipher.deviceKey
        }
    }

    private let state = Mutex(State())
    private let load: Loader
    private let refreshInterval: TimeAmount
    /// Called with the number of sessions a full table dropped.
    private let evicted: @Sendable (Int) -> Void

    public init(refreshInterval: TimeAmount = .seconds(10), evicted: @escaping @Sendable (Int) -> Void = { _ in }, load: @escaping Loader) {
        self.load = load
        self.refreshInterval = refreshInterval
        self.evicted = evicted
    }

    /// Where a finished read reports its id (CLyman's event loop releases what waited for it).
    public func onLoad(_ handler: @escaping @Sendable (UInt64) -> Void) {
        state.withLock { $0.onLoad = handler }
    }

    public func lookup(_ keyID: UInt64, now: NIODeadline = .now()) -> Lookup {
        enum Next { case none, read, refresh }
        let (lookup, next) = state.withLock { state -> (Lookup, Next) in
            if var entry = state.sessions[keyID] {
                guard let refreshAt = entry.refreshAt, now >= refreshAt, !state.loading.contains(keyID) else { return (.found(entry.opener), .none) }
                entry.refreshAt = now + refreshInterval
                state.sessions[keyID] = entry
                state.loading.insert(keyID)
                return (.found(entry.opener), .refresh)
            }
            if state.loading.contains(keyID) { return (.loading, .none) }
            if let until = state.unknownUntil[keyID], now < until { return (.unknown, .none) }
            guard state.loading.count < Self.maximumLoading else { return (.unknown, .none) }
            state.loading.insert(keyID)
            return (.loading, .read)
        }
        if next != .none {
            // Unstructured on purpose: the hot path cannot await; the task ends with the store read.
            Task { await self.read(keyID) }
        }
        return lookup
    }

    /// A device registered here with `key`: its session works from the next datagram, and its previous
    /// one no longer does.
    public func install(_ key: EventSessionKey, sceneKey: String, deviceKey: String) {
        let opener = SessionOpener(SessionCipher(key, direction: .toPair, sceneKey: sceneKey, deviceKey: deviceKey))
        let dropped = state.withLock { state in
            state.unknownUntil[key.id] = nil
            return state.insert(opener, refreshAt: nil)
        }
        if dropped > 0 { evicted(dropped) }
    }

    /// A device deregistered here: its session stops working at once.
    public func withdraw(sceneKey: String, deviceKey: String) {
        state.withLock { state in
            let device = DeviceInScene(sceneKey: sceneKey, deviceKey: deviceKey)
            if let keyID = state.byDevice[device] { state.remove(keyID: keyID) }
        }
    }

    private func read(_ keyID: UInt64) async {
        let registration: (sceneKey: String, device: Device)??
        do {
            registration = try await load(keyID)
        } catch {
            registration = nil  // the store failed: keep what there is, try again later
        }
        let (handler, dropped) = state.withLock { state -> ((@Sendable (UInt64) -> Void)?, Int) in
            state.loading.remove(keyID)
            var dropped = 0
            switch registration {
            case .some(.some(let found)) where found.device.sessionKey?.id == keyID:
                let key = found.device.sessionKey!
                if let entry = state.sessions[keyID], entry.opener.cipher.sceneKey == found.sceneKey, entry.opener.cipher.deviceKey == found.device.key {
                    state.sessions[keyID]?.refreshAt = .now() + refreshInterval
                } else {
                    let cipher = SessionCipher(key, direction: .toPair, sceneKey: found.sceneKey, deviceKey: found.device.key)
                    dropped = state.insert(SessionOpener(cipher), refreshAt: .now() + refreshInterval)
                }
            case .some:
                // Withdrawn or replaced: no datagram under this key is accepted any more.
                state.remove(keyID: keyID)
                if state.unknownUntil.count >= Self.maximumSessions { state.unknownUntil.removeAll(keepingCapacity: true) }
                state.unknownUntil[keyID] = .now() + Self.unknownFor
            case .none:
                break
            }
            return (state.onLoad, dropped)
        }
        if dropped > 0 { evicted(dropped) }
        handler?(keyID)
    }
}

extension EventSessions.DeviceInScene {
    init(sceneKey: String, deviceKey: String) {
        self.sceneKey = sceneKey
        self.deviceKey = deviceKey
    }
}
