import AeselModel
import AeselStore
import Foundation
import Testing

@Suite("SQLite store")
struct SQLiteStoreTests {
    let folder = NSTemporaryDirectory() + "aesel-store-\(UUID().uuidString)"

    @Test("Scenes, registrations and objects survive reopening the file")
    func persistence() async throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(dataFolder: folder)
        try await store.createScene(Scene(key: "s", name: "Lobby", region: "eu", latitude: 48.8, assets: ["a"], tags: ["t"]))
        await #expect(throws: StoreError.duplicateKey("s")) { try await store.createScene(Scene(key: "s")) }
        try await store.register(Device(key: "d1", hostname: "127.0.0.1", port: 4000), inScene: "s")
        try await store.register(Device(key: "d1", hostname: "127.0.0.1", port: 4001, format: .binary), inScene: "s")
        try await store.register(Device(key: "d2", hostname: "127.0.0.1", port: 4002), inScene: "s")
        #expect(try await store.deregister(deviceKey: "d2", fromScene: "s"))
        #expect(try await !store.deregister(deviceKey: "d2", fromScene: "s"))
        let moved = Transform(rowMajor: [1, 0, 0, 9, 0, 1, 0, 8, 0, 0, 1, 7])
        try await store.createObject(SceneObject(key: "o", sceneKey: "s", name: "cube", parent: "p", transform: moved))
        try await store.close()

        let reopened = try SQLiteStore(dataFolder: folder)
        #expect(try await reopened.scene(key: "s") == Scene(key: "s", name: "Lobby", region: "eu", latitude: 48.8, assets: ["a"], tags: ["t"]))
        #expect(try await reopened.devices(inScene: "s") == [Device(key: "d1", hostname: "127.0.0.1", port: 4001, format: .binary)])
        let object = try #require(try await reopened.object(key: "o"))
        #expect(object.transform == moved)
        #expect(object.parent == "p")
        #expect(try await reopened.scene(key: "missing") == nil)
        try await reopened.close()
    }

    @Test("A stale transform never overwrites a newer one")
    func staleTransforms() async throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(dataFolder: folder)
        try await store.createScene(Scene(key: "s"))
        try await store.createObject(SceneObject(key: "o", sceneKey: "s"))
        let newer = Transform(rowMajor: [1, 0, 0, 2])
        let older = Transform(rowMajor: [1, 0, 0, 1])
        #expect(try await store.applyTransforms([TransformUpdate(objectKey: "o", transform: newer, sequence: 10)]) == 1)
        #expect(try await store.applyTransforms([TransformUpdate(objectKey: "o", transform: older, sequence: 9)]) == 0)
        #expect(try await store.object(key: "o")?.transform == newer)
        // Unnumbered events always apply; the stored sequence stays the highest seen.
        #expect(try await store.applyTransforms([TransformUpdate(objectKey: "o", transform: older, sequence: 0)]) == 1)
        #expect(try await store.object(key: "o")?.sequence == 10)
        #expect(try await store.applyTransforms([TransformUpdate(objectKey: "missing", transform: older, sequence: 1)]) == 0)
        try await store.close()
    }
}
