import AeselModel
import AeselStore
@testable import CLyman
import Logging
import ServiceLifecycleTestKit
import Testing

/// The lock mirror the UDP path reads, and its refresher over a real (in-memory) store.
@Suite("Object locks")
struct ObjectLocksTests {
    static func lock(_ objectKey: String, by owner: String) -> ObjectLock {
        ObjectLock(objectKey: objectKey, sceneKey: "s", owner: owner)
    }

    @Test("A reload installs the store's locks: taken and released elsewhere")
    func reloadReplaces() {
        let locks = ObjectLocks([Self.lock("a", by: "phone")])
        locks.reloadStarted()
        locks.reloadFinished([Self.lock("b", by: "tablet")])
        #expect(locks.owner(of: "a") == nil)
        #expect(locks.owner(of: "b") == "tablet")
    }

    @Test("A change made here while a reload reads survives it; a failed reload keeps the mirror")
    func localChangesSurvive() {
        let locks = ObjectLocks([Self.lock("a", by: "phone")])
        locks.reloadStarted()
        // Committed after the reload read the store: its answer still shows the old state.
        locks.set(owner: "", of: "a")
        locks.set(owner: "tablet", of: "b")
        locks.reloadFinished([Self.lock("a", by: "phone")])
        #expect(locks.owner(of: "a") == nil)
        #expect(locks.owner(of: "b") == "tablet")
        // The next reload trusts the store alone.
        locks.reloadStarted()
        locks.reloadFinished([Self.lock("a", by: "watch")])
        #expect(locks.owner(of: "a") == "watch")
        #expect(locks.owner(of: "b") == nil)
        locks.reloadStarted()
        locks.reloadFinished(nil)
        #expect(locks.owner(of: "a") == "watch")
    }

    @Test("The refresher brings in locks another process wrote to the store, and stops on graceful shutdown")
    func refresherFollowsTheStore() async throws {
        let store = InMemoryStore()
        try await store.createObject(SceneObject(key: "o", sceneKey: "s"))
        let locks = ObjectLocks()
        let refresher = LockRefresher(locks: locks, store: store, interval: .milliseconds(5), logger: Logger(label: "test"))
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await refresher.run() }
                _ = try await store.updateObject(key: "o") { $0.owner = "phone" }
                #expect(await Self.eventually { locks.owner(of: "o") == "phone" })
                _ = try await store.updateObject(key: "o") { $0.owner = "" }
                #expect(await Self.eventually { locks.owner(of: "o") == nil })
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
    }

    static func eventually(_ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return condition()
    }
}
