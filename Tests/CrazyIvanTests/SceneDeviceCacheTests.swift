import AeselModel
import CrazyIvan
import NIOCore
import Testing

@Suite("Scene-Device cache")
struct SceneDeviceCacheTests {
    func recipient(_ key: String, _ port: Int) throws -> Recipient {
        try #require(Recipient(Device(key: key, hostname: "127.0.0.1", port: port), inScene: "s"))
    }

    func event(_ scene: String, _ sequence: UInt64) -> ChangeEvent {
        .update(ObjectEvent(sceneKey: scene, objectKey: "o", transform: .identity, sequence: sequence))
    }

    func sequence(_ event: ChangeEvent) -> UInt64 {
        if case .update(let update) = event { return update.sequence }
        return 0
    }

    func keys(_ lookup: SceneDeviceCache.Lookup) -> [String]? {
        if case .deliver(let recipients) = lookup { return recipients.map(\.deviceKey) }
        return nil
    }

    @Test("The first event loads the scene; events held meanwhile come out in order")
    func loadOnFirstEvent() throws {
        let cache = SceneDeviceCache()
        guard case .startLoad = cache.lookup(event("s", 1)) else { Issue.record("expected a load"); return }
        guard case .queued = cache.lookup(event("s", 2)) else { Issue.record("expected queueing"); return }
        // A registration made while the load runs is kept on top of what the load returns.
        cache.apply(.register(try recipient("late", 5002)), sceneKey: "s")
        #expect(cache.finishLoad(sceneKey: "s", devices: [try recipient("a", 5001)]).isEmpty)
        let replay = try #require(cache.nextReplay(sceneKey: "s"))
        #expect(replay.events.map(sequence) == [1, 2])
        #expect(replay.recipients.map(\.deviceKey) == ["a", "late"])
        #expect(cache.nextReplay(sceneKey: "s") == nil)
        #expect(keys(cache.lookup(event("s", 3))) == ["a", "late"])
    }

    @Test("Events that arrive while a loaded scene replays wait behind the replayed ones")
    func eventsDuringReplay() throws {
        let cache = SceneDeviceCache()
        _ = cache.lookup(event("s", 1))
        _ = cache.finishLoad(sceneKey: "s", devices: [try recipient("a", 5001)])
        let first = try #require(cache.nextReplay(sceneKey: "s"))
        // Another thread's event, and a registration, while the first batch is being sent.
        guard case .queued = cache.lookup(event("s", 2)) else { Issue.record("expected queueing behind the replay"); return }
        cache.apply(.register(try recipient("b", 5002)), sceneKey: "s")
        #expect(cache.deviceKey(in: "s", at: try SocketAddress(ipAddress: "127.0.0.1", port: 5002)) == "b")
        let second = try #require(cache.nextReplay(sceneKey: "s"))
        #expect(first.events.map(sequence) + second.events.map(sequence) == [1, 2])
        #expect(second.recipients.map(\.deviceKey) == ["a", "b"])
        #expect(cache.nextReplay(sceneKey: "s") == nil)
        #expect(keys(cache.lookup(event("s", 3))) == ["a", "b"])
    }

    @Test("An unknown scene is remembered briefly, and forgotten when it is created")
    func unknownScene() {
        let cache = SceneDeviceCache()
        _ = cache.lookup(event("x", 1))
        #expect(cache.finishLoad(sceneKey: "x", devices: nil).count == 1)
        #expect(cache.nextReplay(sceneKey: "x") == nil)
        guard case .unknownScene = cache.lookup(event("x", 2)) else { Issue.record("expected unknown"); return }
        cache.sceneCreated("x")
        guard case .startLoad = cache.lookup(event("x", 3)) else { Issue.record("expected a new load"); return }
    }

    @Test("Registration and deregistration apply at once; a refresh read before them is discarded")
    func refreshRace() throws {
        let cache = SceneDeviceCache()
        _ = cache.lookup(event("s", 1))
        _ = cache.finishLoad(sceneKey: "s", devices: [try recipient("a", 5001), try recipient("b", 5002)])
        while cache.nextReplay(sceneKey: "s") != nil {}
        let snapshot = cache.snapshotForRefresh(grace: .seconds(2))
        cache.apply(.deregister(deviceKey: "b"), sceneKey: "s")
        #expect(keys(cache.lookup(event("s", 2))) == ["a"])
        cache.finishRefresh(sceneKey: "s", version: snapshot[0].version, devices: [try recipient("a", 5001), try recipient("b", 5002)])
        #expect(keys(cache.lookup(event("s", 3))) == ["a"])
        // A refresh with no change in between is installed.
        let fresh = cache.snapshotForRefresh(grace: .seconds(2))
        cache.finishRefresh(sceneKey: "s", version: fresh[0].version, devices: [try recipient("c", 5003)])
        #expect(keys(cache.lookup(event("s", 4))) == ["c"])
    }

    @Test("Held events are bounded")
    func pendingBound() {
        let cache = SceneDeviceCache()
        _ = cache.lookup(event("s", 0))
        var overflowed = 0
        for sequence in 1...300 {
            if case .pendingOverflow = cache.lookup(event("s", UInt64(sequence))) { overflowed += 1 }
        }
        #expect(overflowed == 300 - 255)
    }

    /// Loads `scene` with `devices` through its first event, as the fan-out does; returns the replayed events.
    @discardableResult
    func load(_ cache: SceneDeviceCache, _ scene: String, _ devices: [Recipient], first: UInt64 = 0) -> [ChangeEvent] {
        _ = cache.lookup(event(scene, first))
        _ = cache.finishLoad(sceneKey: scene, devices: devices)
        var replayed: [ChangeEvent] = []
        while let (events, _) = cache.nextReplay(sceneKey: scene) { replayed += events }
        return replayed
    }

    @Test("An entry expires by age, however busy: its next event reloads it, held with the events behind it, in order")
    func expiryByAge() async throws {
        let cache = SceneDeviceCache(configuration: .init(timeToLive: .milliseconds(200)))
        load(cache, "s", [try recipient("a", 5001)])
        #expect(keys(cache.lookup(event("s", 1))) == ["a"])
        try await Task.sleep(for: .milliseconds(300))
        guard case .startLoad = cache.lookup(event("s", 2)) else { Issue.record("expected a reload"); return }
        guard case .queued = cache.lookup(event("s", 3)) else { Issue.record("expected queueing behind the reload"); return }
        #expect(cache.finishLoad(sceneKey: "s", devices: [try recipient("a", 5001), try recipient("b", 5002)]).isEmpty)
        let replay = try #require(cache.nextReplay(sceneKey: "s"))
        #expect(replay.events.map(sequence) == [2, 3])
        #expect(replay.recipients.map(\.deviceKey) == ["a", "b"])
        #expect(cache.nextReplay(sceneKey: "s") == nil)
        #expect(keys(cache.lookup(event("s", 4))) == ["a", "b"])
    }

    @Test("A refresh keeps an entry current, not alive; an expired entry no event asks for leaves memory after the grace")
    func refreshDoesNotExtendLife() async throws {
        let cache = SceneDeviceCache(configuration: .init(timeToLive: .milliseconds(200)))
        load(cache, "s", [try recipient("a", 5001)])
        let snapshot = cache.snapshotForRefresh(grace: .zero)
        #expect(snapshot.map(\.sceneKey) == ["s"])
        cache.finishRefresh(sceneKey: "s", version: snapshot[0].version, devices: [try recipient("b", 5002)])
        #expect(keys(cache.lookup(event("s", 1))) == ["b"])
        try await Task.sleep(for: .milliseconds(300))
        // Expired within the grace: not refreshed, still in memory for its next event to reload.
        #expect(cache.snapshotForRefresh(grace: .seconds(60)).isEmpty)
        #expect(cache.deviceKey(in: "s", at: try SocketAddress(ipAddress: "127.0.0.1", port: 5002)) == "b")
        #expect(cache.snapshotForRefresh(grace: .zero).isEmpty)
        #expect(cache.deviceKey(in: "s", at: try SocketAddress(ipAddress: "127.0.0.1", port: 5002)) == nil)
    }

    @Test("A refresh that read a scene before it was reloaded is discarded")
    func refreshAcrossReload() async throws {
        let cache = SceneDeviceCache(configuration: .init(timeToLive: .milliseconds(200)))
        load(cache, "s", [try recipient("a", 5001)])
        let snapshot = cache.snapshotForRefresh(grace: .zero)
        try await Task.sleep(for: .milliseconds(300))
        load(cache, "s", [try recipient("a", 5001), try recipient("b", 5002)], first: 1)
        cache.finishRefresh(sceneKey: "s", version: snapshot[0].version, devices: [try recipient("a", 5001)])
        #expect(keys(cache.lookup(event("s", 2))) == ["a", "b"])
    }

    @Test("Pinned scenes never expire and survive a full table; unpinned, they expire again")
    func pinning() async throws {
        let cache = SceneDeviceCache(configuration: .init(timeToLive: .milliseconds(200)))
        #expect(Set(cache.pin(["p", "q"])) == ["p", "q"])
        #expect(cache.beginLoad(sceneKey: "p"))
        _ = cache.finishLoad(sceneKey: "p", devices: [try recipient("a", 5001)])
        load(cache, "o", [try recipient("a", 5001)])
        // Only what is not cached is to load.
        #expect(cache.pin(["p", "q"]) == ["q"])
        try await Task.sleep(for: .milliseconds(300))
        #expect(keys(cache.lookup(event("p", 1))) == ["a"])
        guard case .startLoad = cache.lookup(event("o", 1)) else { Issue.record("expected the unpinned scene to reload"); return }
        #expect(cache.snapshotForRefresh(grace: .zero).map(\.sceneKey) == ["p"], "pinned scenes are still refreshed")

        // Fill the table with live entries: the pinned one stays when a new scene needs room.
        for index in 0..<SceneDeviceCache.maximumScenes { load(cache, "fill-\(index)", []) }
        guard case .startLoad = cache.lookup(event("new", 1)) else { Issue.record("expected room for a new scene"); return }
        #expect(keys(cache.lookup(event("p", 2))) == ["a"])
        #expect(cache.deviceKey(in: "fill-0", at: try SocketAddress(ipAddress: "127.0.0.1", port: 5001)) == nil)

        _ = cache.pin([])
        try await Task.sleep(for: .milliseconds(300))
        guard case .startLoad = cache.lookup(event("p", 3)) else { Issue.record("expected the unpinned scene to expire"); return }
    }

    @Test("Forwarding while loading: events go at once to the devices known so far, nothing is held")
    func forwardWhileLoading() async throws {
        let cache = SceneDeviceCache(configuration: .init(timeToLive: .milliseconds(200), forwardWhileLoading: true))
        guard case .deliverAndLoad(let known) = cache.lookup(event("s", 1)), known.isEmpty else {
            Issue.record("expected a load, the event sent to no device")
            return
        }
        // A registration applied during the load: the next event reaches it.
        cache.apply(.register(try recipient("late", 5002)), sceneKey: "s")
        #expect(keys(cache.lookup(event("s", 2))) == ["late"])
        cache.apply(.deregister(deviceKey: "late"), sceneKey: "s")
        #expect(keys(cache.lookup(event("s", 3))) == [])
        cache.apply(.register(try recipient("late", 5002)), sceneKey: "s")
        #expect(cache.finishLoad(sceneKey: "s", devices: [try recipient("a", 5001)]).isEmpty)
        #expect(cache.nextReplay(sceneKey: "s") == nil, "nothing was held")
        #expect(keys(cache.lookup(event("s", 4))) == ["a", "late"])

        // An expired entry reloads on its next event, which goes to the devices it had.
        try await Task.sleep(for: .milliseconds(300))
        guard case .deliverAndLoad(let previous) = cache.lookup(event("s", 5)) else { Issue.record("expected a reload"); return }
        #expect(previous.map(\.deviceKey) == ["a", "late"])
        #expect(keys(cache.lookup(event("s", 6))) == ["a", "late"])
    }

    @Test("A failed first load is forgotten; a failed reload serves on with the devices the scene had")
    func failedLoads() async throws {
        let cache = SceneDeviceCache(configuration: .init(timeToLive: .milliseconds(200)))
        _ = cache.lookup(event("s", 1))
        #expect(cache.abandonLoad(sceneKey: "s").map(sequence) == [1], "held events are dropped")
        guard case .startLoad = cache.lookup(event("s", 2)) else { Issue.record("expected a new load"); return }

        _ = cache.finishLoad(sceneKey: "s", devices: [try recipient("a", 5001)])
        while cache.nextReplay(sceneKey: "s") != nil {}
        try await Task.sleep(for: .milliseconds(300))
        guard case .startLoad = cache.lookup(event("s", 3)) else { Issue.record("expected a reload"); return }
        cache.apply(.register(try recipient("b", 5002)), sceneKey: "s")
        #expect(cache.abandonLoad(sceneKey: "s").isEmpty)
        let replay = try #require(cache.nextReplay(sceneKey: "s"))
        #expect(replay.events.map(sequence) == [3])
        #expect(replay.recipients.map(\.deviceKey) == ["a", "b"])
        #expect(cache.nextReplay(sceneKey: "s") == nil)
        #expect(keys(cache.lookup(event("s", 4))) == ["a", "b"])
    }
}
