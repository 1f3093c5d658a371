import AeselModel
import CrazyIvan
import NIOCore
import Testing

@Suite("Scene-Device cache")
struct SceneDeviceCacheTests {
    func recipient(_ key: String, _ port: Int) throws -> Recipient {
        try #require(Recipient(Device(key: key, hostname: "127.0.0.1", port: port)))
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
        let snapshot = cache.snapshotForRefresh(idleLimit: .minutes(1))
        cache.apply(.deregister(deviceKey: "b"), sceneKey: "s")
        #expect(keys(cache.lookup(event("s", 2))) == ["a"])
        cache.finishRefresh(sceneKey: "s", version: snapshot[0].version, devices: [try recipient("a", 5001), try recipient("b", 5002)])
        #expect(keys(cache.lookup(event("s", 3))) == ["a"])
        // A refresh with no change in between is installed.
        let fresh = cache.snapshotForRefresh(idleLimit: .minutes(1))
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
}
