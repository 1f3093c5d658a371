import AeselModel
import AeselStore
@testable import CLyman
import Logging
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing
import NIOConcurrencyHelpers

/// An in-memory store whose event writes fail on demand: unavailable while `down`, or refusing the
/// updates of some keys. Everything else goes straight to the rows.
final class FlakyStore: AeselStore {
    private struct State {
        var down = false
        var refused: Set<String> = []
        /// Run once, inside the next write that fails, before it throws.
        var duringFailure: (@Sendable () -> Void)?
        var eventWrites = 0
    }

    let rows = InMemoryStore()
    private let state = NIOLockedValueBox(State())

    func setDown(_ down: Bool) {
        state.withLockedValue { $0.down = down }
    }

    func refuse(_ key: String) {
        state.withLockedValue { _ = $0.refused.insert(key) }
    }

    func duringNextFailure(_ action: @escaping @Sendable () -> Void) {
        state.withLockedValue { $0.duringFailure = action }
    }

    /// How many event writes (batches or single updates) the store was asked for.
    var eventWrites: Int { state.withLockedValue { $0.eventWrites } }

    private func check(_ keys: [String]) throws {
        let (down, refused, action) = state.withLockedValue { state in
            state.eventWrites += 1
            let fails = state.down || !state.refused.isDisjoint(with: keys)
            let action = fails ? state.duringFailure : nil
            if fails { state.duringFailure = nil }
            return (state.down, !state.refused.isDisjoint(with: keys), action)
        }
        action?()
        if down { throw StoreError(.unavailable, "down for the test") }
        if refused { throw StoreError(.invalid, "refused for the test") }
    }

    func applyTransforms(_ updates: [TransformUpdate]) async throws -> Int {
        try check(updates.map(\.objectKey))
        return try await rows.applyTransforms(updates)
    }

    func applyPropertyValues(_ updates: [PropertyValuesUpdate]) async throws -> Int {
        try check(updates.map(\.propertyKey))
        return try await rows.applyPropertyValues(updates)
    }

    func createScene(_ scene: Scene) async throws { try await rows.createScene(scene) }
    func scene(key: String) async throws -> Scene? { try await rows.scene(key: key) }
    func updateScene(key: String, _ change: @escaping @Sendable (inout Scene) throws -> Void) async throws -> Scene? {
        try await rows.updateScene(key: key, change)
    }
    func deleteScene(key: String) async throws -> Bool { try await rows.deleteScene(key: key) }
    func scenes(name: String?, region: String?) async throws -> [Scene] { try await rows.scenes(name: name, region: region) }
    func register(_ device: Device, inScene sceneKey: String) async throws { try await rows.register(device, inScene: sceneKey) }
    func deregister(deviceKey: String, fromScene sceneKey: String) async throws -> Bool {
        try await rows.deregister(deviceKey: deviceKey, fromScene: sceneKey)
    }
    func devices(inScene sceneKey: String) async throws -> [Device] { try await rows.devices(inScene: sceneKey) }
    func registrations(ofDevice deviceKey: String) async throws -> [(sceneKey: String, device: Device)] {
        try await rows.registrations(ofDevice: deviceKey)
    }
    func registration(sessionKeyID: UInt64) async throws -> (sceneKey: String, device: Device)? {
        try await rows.registration(sessionKeyID: sessionKeyID)
    }
    func setLink(_ link: SceneLink) async throws { try await rows.setLink(link) }
    func links(touching sceneKeys: [String]) async throws -> [SceneLink] { try await rows.links(touching: sceneKeys) }
    func pairOfScene(_ sceneKey: String) async throws -> String? { try await rows.pairOfScene(sceneKey) }
    func assignScene(_ sceneKey: String, toPair pairID: String, ifCurrently expected: String?) async throws -> Bool {
        try await rows.assignScene(sceneKey, toPair: pairID, ifCurrently: expected)
    }
    func scenes(onPair pairID: String) async throws -> [String] { try await rows.scenes(onPair: pairID) }
    func sceneCountsByPair() async throws -> [String: Int] { try await rows.sceneCountsByPair() }
    func createObject(_ object: SceneObject) async throws { try await rows.createObject(object) }
    func object(key: String) async throws -> SceneObject? { try await rows.object(key: key) }
    func updateObject(key: String, _ change: @escaping @Sendable (inout SceneObject) throws -> Void) async throws -> SceneObject? {
        try await rows.updateObject(key: key, change)
    }
    func deleteObject(key: String) async throws -> SceneObject? { try await rows.deleteObject(key: key) }
    func objects(matching filter: ObjectFilter, limit: Int) async throws -> [SceneObject] { try await rows.objects(matching: filter, limit: limit) }
    func objectLocks() async throws -> [ObjectLock] { try await rows.objectLocks() }
    func createProperty(_ property: SceneProperty) async throws { try await rows.createProperty(property) }
    func property(key: String) async throws -> SceneProperty? { try await rows.property(key: key) }
    func updateProperty(key: String, _ change: @escaping @Sendable (inout SceneProperty) throws -> Void) async throws -> SceneProperty? {
        try await rows.updateProperty(key: key, change)
    }
    func deleteProperty(key: String) async throws -> SceneProperty? { try await rows.deleteProperty(key: key) }
    func properties(matching filter: PropertyFilter, limit: Int) async throws -> [SceneProperty] {
        try await rows.properties(matching: filter, limit: limit)
    }
    func memberKeys(ofScene sceneKey: String) async throws -> SceneMemberKeys { try await rows.memberKeys(ofScene: sceneKey) }
    func close() async throws { try await rows.close() }
}

/// The write-behind against a store that fails: what it keeps, what it drops, and its last flush.
@Suite("Write-behind")
struct WriteBehindTests {
    static let first = Transform(rowMajor: [1, 0, 0, 1])
    static let second = Transform(rowMajor: [1, 0, 0, 2])

    /// A store with objects `o1`, `o2` and property `p1` in scene `s`, and a write-behind that flushes
    /// only when told to (or at shutdown).
    static func make() async throws -> (FlakyStore, TransformWriteBehind) {
        let store = FlakyStore()
        try await store.createObject(SceneObject(key: "o1", sceneKey: "s"))
        try await store.createObject(SceneObject(key: "o2", sceneKey: "s"))
        try await store.createProperty(SceneProperty(key: "p1", sceneKey: "s"))
        let writeBehind = TransformWriteBehind(store: store, interval: .seconds(3600), metrics: IngestMetrics(), logger: Logger(label: "test"))
        return (store, writeBehind)
    }

    static func moved(_ key: String, to transform: Transform, sequence: UInt64) -> ObjectEvent {
        ObjectEvent(sceneKey: "s", objectKey: key, transform: transform, sequence: sequence)
    }

    static func valued(_ key: String, _ values: [Double], sequence: UInt64) -> ObjectEvent {
        ObjectEvent(kind: .propertyUpdate, sceneKey: "s", objectKey: key, values: values, sequence: sequence)
    }

    @Test("An unavailable store keeps the whole batch for later, under what was recorded meanwhile; nothing is lost")
    func unavailableStore() async throws {
        let (store, writeBehind) = try await Self.make()
        store.setDown(true)
        writeBehind.record(Self.moved("o1", to: Self.first, sequence: 1))
        writeBehind.record(Self.moved("o2", to: Self.first, sequence: 1))
        writeBehind.record(Self.valued("p1", [1], sequence: 1))
        // Newer updates arrive while the batch that holds the older ones fails.
        store.duringNextFailure {
            writeBehind.record(Self.moved("o1", to: Self.second, sequence: 2))
            writeBehind.record(Self.valued("p1", [2], sequence: 2))
        }
        await writeBehind.flush()
        #expect(store.eventWrites == 1, "one batch, not one write per update")
        #expect(try await store.object(key: "o1")?.sequence == 0)
        #expect(writeBehind.newest(objectKey: "o1")?.sequence == 2)
        #expect(writeBehind.newest(objectKey: "o2")?.sequence == 1)
        #expect(writeBehind.newestValues(propertyKey: "p1")?.values == [2])

        // Still down: the whole batch waits again.
        await writeBehind.flush()
        #expect(store.eventWrites == 2)
        #expect(writeBehind.newest(objectKey: "o2")?.sequence == 1)

        store.setDown(false)
        await writeBehind.flush()
        let o1 = try await store.object(key: "o1")
        let o2 = try await store.object(key: "o2")
        #expect(o1?.transform == Self.second)
        #expect(o1?.sequence == 2)
        #expect(o2?.transform == Self.first)
        #expect(o2?.sequence == 1)
        #expect(try await store.property(key: "p1")?.values == [2])
        #expect(writeBehind.newest(objectKey: "o1") == nil)
        #expect(writeBehind.newestValues(propertyKey: "p1") == nil)
    }

    @Test("An update the store refuses is dropped; the rest of its batch is written")
    func refusedUpdate() async throws {
        let (store, writeBehind) = try await Self.make()
        store.refuse("o2")
        writeBehind.record(Self.moved("o1", to: Self.first, sequence: 1))
        writeBehind.record(Self.moved("o2", to: Self.first, sequence: 1))
        writeBehind.record(Self.valued("p1", [3], sequence: 1))
        await writeBehind.flush()
        #expect(try await store.object(key: "o1")?.transform == Self.first)
        #expect(try await store.object(key: "o2")?.transform == .identity)
        #expect(try await store.property(key: "p1")?.values == [3])
        #expect(writeBehind.newest(objectKey: "o2") == nil, "dropped, not retried for ever")
    }

    @Test("A store that goes away while a refused batch is written one by one keeps what it did not write")
    func unavailableDuringOneByOne() async throws {
        let (store, writeBehind) = try await Self.make()
        store.refuse("o1")
        writeBehind.record(Self.moved("o1", to: Self.first, sequence: 1))
        writeBehind.record(Self.valued("p1", [4], sequence: 1))
        // The batch is refused (for o1), and the store is down by the time the updates are tried alone.
        store.duringNextFailure { store.setDown(true) }
        await writeBehind.flush()
        #expect(try await store.property(key: "p1")?.values == [])
        #expect(writeBehind.newest(objectKey: "o1")?.sequence == 1)
        #expect(writeBehind.newestValues(propertyKey: "p1")?.values == [4])

        // Back: the refused one is dropped, the other written.
        store.setDown(false)
        await writeBehind.flush()
        #expect(try await store.property(key: "p1")?.values == [4])
        #expect(try await store.object(key: "o1")?.sequence == 0)
        #expect(writeBehind.newest(objectKey: "o1") == nil)
    }

    @Test("Graceful shutdown writes what is pending, without waiting out the interval")
    func shutdownFlushes() async throws {
        let (store, writeBehind) = try await Self.make()
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await writeBehind.run() }
                writeBehind.record(Self.moved("o1", to: Self.second, sequence: 5))
                writeBehind.record(Self.valued("p1", [5], sequence: 5))
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        #expect(try await store.object(key: "o1")?.transform == Self.second)
        #expect(try await store.property(key: "p1")?.values == [5])
    }
}
