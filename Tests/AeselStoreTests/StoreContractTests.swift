import AeselModel
import AeselStore
@testable import AeselStorePostgres
import AeselStoreSQLite
import AeselTesting
import Foundation
import MetricsTestKit
import NIOSSL
import Testing


/// Thrown by `update…` closures in the tests; the store must roll back and rethrow it.
struct Refused: Error, Equatable {
    var reason = "refused"
}

@Suite("Store contract", .serialized)
struct StoreContractTests {
    // MARK: Fixtures

    static let moved = Transform(rowMajor: [1, 0, 0, 9, 0, 1, 0, 8, 0, 0, 1, 7.25])
    static let pose = DeviceTransform(translation: SIMD3(1.5, -2, 3), rotation: SIMD3(0.1, 0.2, -0.3))

    static let lobby = Scene(
        key: "s1", name: "Lobby", description: "the hall", thumbnail: "t.png", region: "eu", latitude: 48.8,
        longitude: 2.35, distance: 12.5, isActive: false, isPublic: false, assets: ["a", "b"], tags: ["t"]
    )

    static let action = ObjectAction(
        name: "spin",
        description: "turns",
        owner: "u1",
        keyframes: [
            ObjectKeyframe(frame: 10, owner: "u1", transform: moved, translationHandle: [GraphHandle(leftType: "VECTOR", leftX: 1, leftY: 2, rightType: "FREE", rightX: 3, rightY: 4)]),
            ObjectKeyframe(frame: 2),
        ]
    )

    static let cube = SceneObject(
        key: "o1", sceneKey: "s1", name: "cube", type: "mesh", subtype: "box", owner: "", parent: "p",
        assetSubID: "sub", transform: moved, assets: ["a1", "a2"], actions: [action], sequence: 3
    )

    static let propertyAction = PropertyAction(
        name: "fade",
        keyframes: [PropertyKeyframe(frame: 4, owner: "u2", values: [PropertyKeyframeValue(value: 0.5), PropertyKeyframeValue(value: 1)])]
    )

    static let brightness = SceneProperty(
        key: "p1", sceneKey: "s1", name: "brightness", parent: "o1", assetSubID: "sub", values: [0.25, 1],
        actions: [propertyAction], sequence: 2
    )

    /// A comparable form of `registrations(ofDevice:)`.
    static func registrationList(_ list: [(sceneKey: String, device: Device)]) -> [String] {
        list.map { "\($0.sceneKey):\($0.device.key):\($0.device.port)" }
    }

    /// Expects `body` to throw a ``StoreError`` of `code` whose message names each of `names`.
    static func expect(
        _ code: StoreError.Code, naming names: [String] = [], sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () async throws -> some Any
    ) async throws {
        let error = await #expect(throws: StoreError.self, sourceLocation: sourceLocation) { _ = try await body() }
        #expect(error?.code == code, "\(String(describing: error))", sourceLocation: sourceLocation)
        for name in names {
            #expect(error?.message.contains(name) == true, "\(String(describing: error)) names \(name)", sourceLocation: sourceLocation)
        }
    }

    // MARK: Scenes

    @Test("Scenes: create, duplicate key, get", arguments: StoreKind.allCases)
    func createAndGetScene(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.createScene(Self.lobby)
            try await store.createScene(Scene(key: "s2"))
            try await Self.expect(.duplicate, naming: ["s1"]) { try await store.createScene(Scene(key: "s1", name: "other")) }
            #expect(try await store.scene(key: "s1") == Self.lobby)
            #expect(try await store.scene(key: "s2") == Scene(key: "s2"))
            #expect(try await store.scene(key: "missing") == nil)
        }
    }

    @Test("Scenes: update writes every field; a throwing closure rolls back", arguments: StoreKind.allCases)
    func updateScene(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.createScene(Self.lobby)
            var expected = Self.lobby
            expected.name = "Atrium"
            expected.description = ""
            expected.region = "us"
            expected.latitude = nil
            expected.longitude = -70.5
            expected.distance = 3
            expected.isActive = true
            expected.isPublic = true
            expected.assets = []
            expected.tags = ["x", "y"]
            let changed = expected
            let updated = try await store.updateScene(key: "s1") { scene in
                let key = scene.key
                scene = changed
                scene.key = key
            }
            #expect(updated == expected)
            #expect(try await store.scene(key: "s1") == expected)

            await #expect(throws: Refused()) {
                try await store.updateScene(key: "s1") { scene in
                    scene.name = "half-done"
                    throw Refused()
                }
            }
            #expect(try await store.scene(key: "s1") == expected)
            #expect(try await store.updateScene(key: "missing") { $0.name = "x" } == nil)
            #expect(try await store.scene(key: "missing") == nil)
        }
    }

    @Test("Scenes: delete removes the scene's registrations and links", arguments: StoreKind.allCases)
    func deleteScene(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            for key in ["s1", "s2", "s3"] { try await store.createScene(Scene(key: key)) }
            try await store.register(Device(key: "d1", hostname: "127.0.0.1", port: 4000), inScene: "s1")
            try await store.register(Device(key: "d1", hostname: "127.0.0.1", port: 4001), inScene: "s2")
            try await store.setLink(SceneLink(from: "s1", to: "s2", transform: Self.pose))
            try await store.setLink(SceneLink(from: "s3", to: "s1", transform: Self.pose))
            try await store.setLink(SceneLink(from: "s2", to: "s3", transform: Self.pose))

            #expect(try await store.deleteScene(key: "s1"))
            #expect(try await store.scene(key: "s1") == nil)
            #expect(try await store.devices(inScene: "s1").isEmpty)
            #expect(Self.registrationList(try await store.registrations(ofDevice: "d1")) == ["s2:d1:4001"])
            #expect(try await store.links(touching: ["s1", "s2", "s3"]) == [SceneLink(from: "s2", to: "s3", transform: Self.pose)])
            #expect(try await !store.deleteScene(key: "s1"))
            #expect(try await !store.deleteScene(key: "missing"))
        }
    }

    @Test("Scenes: query by name and region, ordered by key", arguments: StoreKind.allCases)
    func queryScenes(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            // Created out of order; upper case sorts before lower case (byte order) in both back ends.
            let scenes = [
                Scene(key: "c", name: "Lobby", region: "eu"),
                Scene(key: "a", name: "Lobby", region: "us"),
                Scene(key: "b", name: "Hall", region: "eu"),
                Scene(key: "B", name: "Lobby", region: "eu"),
            ]
            for scene in scenes { try await store.createScene(scene) }
            #expect(try await store.scenes(name: nil, region: nil).map(\.key) == ["B", "a", "b", "c"])
            #expect(try await store.scenes(name: "Lobby", region: nil).map(\.key) == ["B", "a", "c"])
            #expect(try await store.scenes(name: nil, region: "eu").map(\.key) == ["B", "b", "c"])
            #expect(try await store.scenes(name: "Lobby", region: "eu").map(\.key) == ["B", "c"])
            #expect(try await store.scenes(name: "Lobby", region: "eu").first == scenes[3])
            #expect(try await store.scenes(name: "nothing", region: nil).isEmpty)
            #expect(try await store.scenes(name: "", region: nil).isEmpty)
        }
    }

    // MARK: Registration

    @Test("Registration: register, replace, deregister, devices, registrations", arguments: StoreKind.allCases)
    func registration(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            for key in ["s1", "s2", "s3"] { try await store.createScene(Scene(key: key)) }
            let first = Device(key: "d1", hostname: "127.0.0.1", port: 4000)
            let replaced = Device(key: "d1", hostname: "::1", port: 4001, connectionString: "tcp://x", format: .binary, transform: Self.pose)
            let other = Device(key: "d0", hostname: "127.0.0.2", port: 4002)
            try await store.register(first, inScene: "s1")
            try await store.register(replaced, inScene: "s1")
            try await store.register(other, inScene: "s1")
            try await store.register(first, inScene: "s2")
            try await store.register(other, inScene: "s3")

            #expect(try await store.devices(inScene: "s1") == [other, replaced])
            #expect(try await store.devices(inScene: "s2") == [first])
            #expect(try await store.devices(inScene: "missing").isEmpty)
            let registrations = try await store.registrations(ofDevice: "d1")
            #expect(registrations.map(\.sceneKey) == ["s1", "s2"])
            #expect(registrations.map(\.device) == [replaced, first])
            #expect(try await store.registrations(ofDevice: "missing").isEmpty)

            #expect(try await store.deregister(deviceKey: "d1", fromScene: "s1"))
            #expect(try await !store.deregister(deviceKey: "d1", fromScene: "s1"))
            #expect(try await !store.deregister(deviceKey: "d1", fromScene: "s3"))
            #expect(try await store.devices(inScene: "s1") == [other])
            #expect(Self.registrationList(try await store.registrations(ofDevice: "d1")) == ["s2:d1:4000"])
        }
    }

    @Test("Registration: a session key is kept with its registration, found by its id, and replaced by the next", arguments: StoreKind.allCases)
    func sessionKeys(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.createScene(Scene(key: "s"))
            let key = EventSessionKey(id: EventSessionKey.idRange.upperBound, secret: (0..<32).map { UInt8($0) })
            let device = Device(key: "d", hostname: "127.0.0.1", port: 4000, sessionKey: key)
            try await store.register(device, inScene: "s")
            #expect(try await store.devices(inScene: "s") == [device])
            let found = try await store.registration(sessionKeyID: key.id)
            #expect(found?.sceneKey == "s" && found?.device == device)
            var rotated = device
            rotated.sessionKey = .generate()
            try await store.register(rotated, inScene: "s")
            #expect(try await store.registration(sessionKeyID: key.id) == nil)
            #expect(try await store.registration(sessionKeyID: rotated.sessionKey!.id)?.device == rotated)
            #expect(try await store.deregister(deviceKey: "d", fromScene: "s"))
            #expect(try await store.registration(sessionKeyID: rotated.sessionKey!.id) == nil)
        }
    }

    // MARK: Scene links

    @Test("Links: one per pair, replaced in either direction; links(touching:)", arguments: StoreKind.allCases)
    func links(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            for key in ["a", "b", "c", "d"] { try await store.createScene(Scene(key: key)) }
            let one = DeviceTransform(translation: SIMD3(1, 0, 0), rotation: .zero)
            let two = DeviceTransform(translation: SIMD3(0, 2, 0), rotation: SIMD3(0, 0, 0.5))
            let three = DeviceTransform(translation: SIMD3(0, 0, 3), rotation: SIMD3(0.25, 0, 0))

            try await store.setLink(SceneLink(from: "a", to: "b", transform: one))
            #expect(try await store.links(touching: ["a"]) == [SceneLink(from: "a", to: "b", transform: one)])
            // The opposite direction replaces the pair.
            try await store.setLink(SceneLink(from: "b", to: "a", transform: two))
            #expect(try await store.links(touching: ["a"]) == [SceneLink(from: "b", to: "a", transform: two)])
            #expect(try await store.links(touching: ["b"]) == [SceneLink(from: "b", to: "a", transform: two)])
            // And back again.
            try await store.setLink(SceneLink(from: "a", to: "b", transform: three))
            #expect(try await store.links(touching: ["a", "b"]) == [SceneLink(from: "a", to: "b", transform: three)])
            // The same direction replaces too.
            try await store.setLink(SceneLink(from: "a", to: "b", transform: one))
            #expect(try await store.links(touching: ["b"]) == [SceneLink(from: "a", to: "b", transform: one)])

            try await store.setLink(SceneLink(from: "c", to: "b", transform: two))
            try await store.setLink(SceneLink(from: "c", to: "d", transform: three))
            #expect(try await store.links(touching: ["a"]) == [SceneLink(from: "a", to: "b", transform: one)])
            #expect(Set(try await store.links(touching: ["b"])) == [
                SceneLink(from: "a", to: "b", transform: one), SceneLink(from: "c", to: "b", transform: two),
            ])
            #expect(Set(try await store.links(touching: ["a", "d"])) == [
                SceneLink(from: "a", to: "b", transform: one), SceneLink(from: "c", to: "d", transform: three),
            ])
            #expect(try await store.links(touching: ["a", "b", "c", "d"]).count == 3)
            #expect(try await store.links(touching: []).isEmpty)
            #expect(try await store.links(touching: ["missing"]).isEmpty)
        }
    }

    // MARK: Scene-to-pair mapping

    @Test("Scene pairs: assign, compare-and-set moves, scenes(onPair:), counts", arguments: StoreKind.allCases)
    func scenePairs(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            // A closure whose every `try` is inside `#expect` is inferred not to throw: read one outside.
            let unassigned = try await store.pairOfScene("s1")
            #expect(unassigned == nil)
            #expect(try await store.sceneCountsByPair().isEmpty)
            #expect(try await store.scenes(onPair: "A").isEmpty)

            // Unassigned: only `ifCurrently: nil` assigns. The scene need not exist.
            #expect(try await !store.assignScene("s1", toPair: "A", ifCurrently: "B"))
            #expect(try await store.pairOfScene("s1") == nil)
            #expect(try await store.assignScene("s1", toPair: "A", ifCurrently: nil))
            #expect(try await store.pairOfScene("s1") == "A")
            #expect(try await store.scene(key: "s1") == nil)
            // Assigned: a second first assignment loses.
            #expect(try await !store.assignScene("s1", toPair: "B", ifCurrently: nil))
            #expect(try await store.pairOfScene("s1") == "A")

            // Moves need the current pair.
            #expect(try await !store.assignScene("s1", toPair: "B", ifCurrently: "C"))
            #expect(try await store.pairOfScene("s1") == "A")
            #expect(try await store.assignScene("s1", toPair: "B", ifCurrently: "A"))
            #expect(try await store.pairOfScene("s1") == "B")
            #expect(try await !store.assignScene("s1", toPair: "C", ifCurrently: "A"))
            #expect(try await store.pairOfScene("s1") == "B")

            // Created out of order; upper case sorts before lower case (byte order) in both back ends.
            for key in ["s3", "s2", "S9", "s10"] {
                #expect(try await store.assignScene(key, toPair: "A", ifCurrently: nil))
            }
            #expect(try await store.assignScene("s4", toPair: "C", ifCurrently: nil))
            #expect(try await store.scenes(onPair: "A") == ["S9", "s10", "s2", "s3"])
            #expect(try await store.scenes(onPair: "B") == ["s1"])
            #expect(try await store.scenes(onPair: "C") == ["s4"])
            #expect(try await store.scenes(onPair: "missing").isEmpty)
            #expect(try await store.sceneCountsByPair() == ["A": 4, "B": 1, "C": 1])

            // Moving the last scene off a pair drops the pair from the counts.
            #expect(try await store.assignScene("s4", toPair: "A", ifCurrently: "C"))
            #expect(try await store.sceneCountsByPair() == ["A": 5, "B": 1])
            #expect(try await store.scenes(onPair: "C").isEmpty)
        }
    }

    @Test("Scene pairs: deleting a scene removes its assignment", arguments: StoreKind.allCases)
    func deleteSceneRemovesAssignment(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.createScene(Scene(key: "s1"))
            try await store.createScene(Scene(key: "s2"))
            #expect(try await store.assignScene("s1", toPair: "A", ifCurrently: nil))
            #expect(try await store.assignScene("s2", toPair: "A", ifCurrently: nil))
            // Assigned, never created.
            #expect(try await store.assignScene("s3", toPair: "B", ifCurrently: nil))

            #expect(try await store.deleteScene(key: "s1"))
            #expect(try await store.pairOfScene("s1") == nil)
            #expect(try await store.pairOfScene("s2") == "A")
            #expect(try await store.scenes(onPair: "A") == ["s2"])
            #expect(try await !store.deleteScene(key: "s3"))
            #expect(try await store.pairOfScene("s3") == nil)
            #expect(try await store.sceneCountsByPair() == ["A": 1])
            // A deleted scene's key is unassigned: a first assignment wins again.
            #expect(try await store.assignScene("s1", toPair: "B", ifCurrently: nil))
            #expect(try await store.pairOfScene("s1") == "B")
        }
    }

    @Test("Scene pairs: of 10 concurrent first assignments exactly one wins", arguments: StoreKind.allCases)
    func concurrentSceneAssignment(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let outcomes = try await withThrowingTaskGroup(of: (String, Bool).self) { group in
                for index in 0..<10 {
                    let pairID = "pair-\(index)"
                    group.addTask { (pairID, try await store.assignScene("contested", toPair: pairID, ifCurrently: nil)) }
                }
                var outcomes: [(String, Bool)] = []
                for try await outcome in group { outcomes.append(outcome) }
                return outcomes
            }
            let winners = outcomes.filter(\.1).map(\.0)
            #expect(outcomes.count == 10)
            #expect(winners.count == 1)
            #expect(try await store.pairOfScene("contested") == winners.first)
            #expect(try await store.sceneCountsByPair() == [winners.first ?? "": 1])
        }
    }

    // MARK: Objects

    @Test("Objects: create, duplicate key, get, update, rollback, delete", arguments: StoreKind.allCases)
    func objectLifecycle(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.createScene(Scene(key: "s1"))
            try await store.createObject(Self.cube)
            try await Self.expect(.duplicate, naming: ["o1"]) { try await store.createObject(SceneObject(key: "o1", sceneKey: "s1")) }
            #expect(try await store.object(key: "o1") == Self.cube)
            #expect(try await store.object(key: "missing") == nil)

            var expected = Self.cube
            expected.name = "sphere"
            expected.type = "light"
            expected.subtype = ""
            expected.owner = "u9"
            expected.parent = ""
            expected.assetSubID = "sub2"
            expected.sceneKey = "s2"
            expected.transform = .identity
            expected.assets = ["z"]
            expected.actions = []
            expected.sequence = 7
            let changed = expected
            let updated = try await store.updateObject(key: "o1") { object in
                object = changed
                object.key = "renamed"  // the key never changes
            }
            #expect(updated == expected)
            #expect(try await store.object(key: "o1") == expected)
            #expect(try await store.object(key: "renamed") == nil)

            await #expect(throws: Refused()) {
                try await store.updateObject(key: "o1") { object in
                    object.name = "half-done"
                    throw Refused()
                }
            }
            #expect(try await store.object(key: "o1") == expected)
            #expect(try await store.updateObject(key: "missing") { $0.name = "x" } == nil)

            #expect(try await store.deleteObject(key: "o1") == expected)
            #expect(try await store.deleteObject(key: "o1") == nil)
            #expect(try await store.object(key: "o1") == nil)
        }
    }

    @Test("Objects: query on each field, assets, limit and key order", arguments: StoreKind.allCases)
    func queryObjects(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let objects = [
                SceneObject(key: "k5", sceneKey: "s1", name: "cube", type: "mesh", subtype: "box", owner: "u1", parent: "", assetSubID: "x", assets: ["a", "b"]),
                SceneObject(key: "k1", sceneKey: "s1", name: "cube", type: "light", subtype: "", owner: "", parent: "k5", assetSubID: "", assets: ["b", "a"]),
                SceneObject(key: "k3", sceneKey: "s2", name: "ball", type: "mesh", subtype: "sphere", owner: "u2", parent: "k5", assetSubID: "x", assets: ["a"]),
                SceneObject(key: "k2", sceneKey: "s2", name: "cube", type: "mesh", subtype: "box", owner: "u1", parent: "", assetSubID: "y", assets: ["a", "b", "c"]),
                SceneObject(key: "k4", sceneKey: "s1", name: "cone", type: "mesh", subtype: "", owner: "", parent: "", assetSubID: "", assets: []),
            ]
            for object in objects { try await store.createObject(object) }

            func keys(_ change: (inout ObjectFilter) -> Void, limit: Int = 100) async throws -> [String] {
                var filter = ObjectFilter()
                change(&filter)
                return try await store.objects(matching: filter, limit: limit).map(\.key)
            }

            #expect(try await keys { _ in } == ["k1", "k2", "k3", "k4", "k5"])
            #expect(try await store.objects(matching: ObjectFilter(), limit: 100) == objects.sorted { $0.key < $1.key })
            #expect(try await keys { $0.name = "cube" } == ["k1", "k2", "k5"])
            #expect(try await keys { $0.sceneKey = "s2" } == ["k2", "k3"])
            #expect(try await keys { $0.type = "mesh" } == ["k2", "k3", "k4", "k5"])
            #expect(try await keys { $0.subtype = "box" } == ["k2", "k5"])
            #expect(try await keys { $0.owner = "u1" } == ["k2", "k5"])
            #expect(try await keys { $0.parent = "k5" } == ["k1", "k3"])
            #expect(try await keys { $0.assetSubID = "x" } == ["k3", "k5"])
            #expect(try await keys { $0.name = "cube"; $0.sceneKey = "s1"; $0.type = "mesh" } == ["k5"])
            #expect(try await keys { $0.name = "nothing" }.isEmpty)
            // One asset: objects that have it.
            #expect(try await keys { $0.assets = ["a"] } == ["k1", "k2", "k3", "k5"])
            #expect(try await keys { $0.assets = ["c"] } == ["k2"])
            #expect(try await keys { $0.assets = ["missing"] }.isEmpty)
            // Several: exactly these, in this order.
            #expect(try await keys { $0.assets = ["a", "b"] } == ["k5"])
            #expect(try await keys { $0.assets = ["b", "a"] } == ["k1"])
            #expect(try await keys { $0.assets = ["a", "b", "c"] } == ["k2"])
            #expect(try await keys { $0.assets = ["a", "c"] }.isEmpty)
            #expect(try await keys { $0.assets = ["a"]; $0.sceneKey = "s2" } == ["k2", "k3"])
            // Limit keeps the first keys.
            #expect(try await keys({ _ in }, limit: 2) == ["k1", "k2"])
            #expect(try await keys({ $0.type = "mesh" }, limit: 3) == ["k2", "k3", "k4"])
            #expect(try await keys({ _ in }, limit: 0).isEmpty)
        }
    }

    @Test("Objects: of 10 concurrent compare-and-set updates exactly one wins", arguments: StoreKind.allCases)
    func concurrentCompareAndSet(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.createObject(SceneObject(key: "lock", sceneKey: "s1"))
            let outcomes = await withTaskGroup(of: (String, Bool).self) { group in
                for index in 0..<10 {
                    let id = "device-\(index)"
                    group.addTask {
                        do {
                            _ = try await store.updateObject(key: "lock") { object in
                                guard object.owner.isEmpty else { throw Refused(reason: "owned by \(object.owner)") }
                                object.owner = id
                            }
                            return (id, true)
                        } catch {
                            return (id, false)
                        }
                    }
                }
                var outcomes: [(String, Bool)] = []
                for await outcome in group { outcomes.append(outcome) }
                return outcomes
            }
            let winners = outcomes.filter(\.1).map(\.0)
            #expect(outcomes.count == 10)
            #expect(winners.count == 1)
            #expect(try await store.object(key: "lock")?.owner == winners.first)
        }
    }

    @Test("Objects: event transforms apply as given, only to objects of the update's scene", arguments: StoreKind.allCases)
    func eventTransforms(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.createObject(SceneObject(key: "o", sceneKey: "s"))
            try await store.createObject(SceneObject(key: "p", sceneKey: "s"))
            try await store.createObject(SceneObject(key: "other", sceneKey: "t"))
            let newer = Transform(rowMajor: [1, 0, 0, 2])
            let older = Transform(rowMajor: [1, 0, 0, 1])
            #expect(try await store.applyTransforms([]) == 0)
            #expect(try await store.applyTransforms([TransformUpdate(objectKey: "o", sceneKey: "s", transform: newer, sequence: 10)]) == 1)
            #expect(try await store.object(key: "o")?.sequence == 10)
            // The write-behind decides what is newest: a number far below the stored one (a sender that
            // counts again, or one poisoned by a huge number) still applies.
            #expect(try await store.applyTransforms([TransformUpdate(objectKey: "o", sceneKey: "s", transform: older, sequence: 3)]) == 1)
            #expect(try await store.object(key: "o")?.transform == older)
            #expect(try await store.object(key: "o")?.sequence == 3)
            // An update naming another scene, or a scene that does not exist, writes nothing.
            #expect(try await store.applyTransforms([TransformUpdate(objectKey: "other", sceneKey: "s", transform: newer, sequence: 1)]) == 0)
            #expect(try await store.applyTransforms([TransformUpdate(objectKey: "o", sceneKey: "nowhere", transform: newer, sequence: 0)]) == 0)
            #expect(try await store.object(key: "other")?.transform == .identity)
            #expect(try await store.object(key: "o")?.transform == older)
            // One call, several objects.
            let changed = try await store.applyTransforms([
                TransformUpdate(objectKey: "o", sceneKey: "s", transform: newer, sequence: 11),
                TransformUpdate(objectKey: "p", sceneKey: "s", transform: Self.moved, sequence: 1),
                TransformUpdate(objectKey: "missing", sceneKey: "s", transform: older, sequence: 1),
            ])
            #expect(changed == 2)
            #expect(try await store.object(key: "o")?.transform == newer)
            #expect(try await store.object(key: "p")?.transform == Self.moved)
            // Two for one object: the later stays, and the object counts once.
            let twice = try await store.applyTransforms([
                TransformUpdate(objectKey: "p", sceneKey: "s", transform: newer, sequence: 20),
                TransformUpdate(objectKey: "p", sceneKey: "s", transform: older, sequence: 19),
            ])
            #expect(twice == 1)
            #expect(try await store.object(key: "p")?.transform == older)
            #expect(try await store.object(key: "p")?.sequence == 19)
        }
    }

    @Test("Scene members: the keys of a scene's objects and properties", arguments: StoreKind.allCases)
    func memberKeys(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.createObject(SceneObject(key: "o1", sceneKey: "s"))
            try await store.createObject(SceneObject(key: "o2", sceneKey: "s"))
            try await store.createObject(SceneObject(key: "o3", sceneKey: "t"))
            try await store.createProperty(SceneProperty(key: "p1", sceneKey: "s"))
            #expect(try await store.memberKeys(ofScene: "s") == SceneMemberKeys(objects: ["o1", "o2"], properties: ["p1"]))
            #expect(try await store.memberKeys(ofScene: "t") == SceneMemberKeys(objects: ["o3"]))
            #expect(try await store.memberKeys(ofScene: "nowhere") == SceneMemberKeys())
            _ = try await store.deleteObject(key: "o1")
            #expect(try await store.memberKeys(ofScene: "s").objects == ["o2"])
        }
    }

    @Test("Object locks: every object with an owner, whoever set it, and none once released or deleted", arguments: StoreKind.allCases)
    func objectLocks(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.createObject(SceneObject(key: "free", sceneKey: "s"))
            try await store.createObject(SceneObject(key: "held", sceneKey: "s", owner: "phone"))
            try await store.createObject(SceneObject(key: "later", sceneKey: "t"))
            #expect(try await store.objectLocks() == [ObjectLock(objectKey: "held", sceneKey: "s", owner: "phone")])
            _ = try await store.updateObject(key: "later") { $0.owner = "tablet" }
            _ = try await store.updateObject(key: "held") { $0.owner = "" }
            #expect(try await store.objectLocks() == [ObjectLock(objectKey: "later", sceneKey: "t", owner: "tablet")])
            _ = try await store.deleteObject(key: "later")
            #expect(try await store.objectLocks() == [])
        }
    }

    // MARK: Properties

    @Test("Properties: create, duplicate key, get, update, rollback, delete", arguments: StoreKind.allCases)
    func propertyLifecycle(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.createProperty(Self.brightness)
            try await Self.expect(.duplicate, naming: ["p1"]) { try await store.createProperty(SceneProperty(key: "p1", sceneKey: "s1")) }
            #expect(try await store.property(key: "p1") == Self.brightness)
            #expect(try await store.property(key: "missing") == nil)

            var expected = Self.brightness
            expected.name = "contrast"
            expected.sceneKey = "s2"
            expected.parent = ""
            expected.assetSubID = "sub2"
            expected.values = [1, 2, 3, 4]
            expected.actions = []
            expected.sequence = 5
            let changed = expected
            let updated = try await store.updateProperty(key: "p1") { property in
                property = changed
                property.key = "renamed"
            }
            #expect(updated == expected)
            #expect(try await store.property(key: "p1") == expected)

            await #expect(throws: Refused()) {
                try await store.updateProperty(key: "p1") { property in
                    property.values = [9]
                    throw Refused()
                }
            }
            #expect(try await store.property(key: "p1") == expected)
            #expect(try await store.updateProperty(key: "missing") { $0.name = "x" } == nil)

            #expect(try await store.deleteProperty(key: "p1") == expected)
            #expect(try await store.deleteProperty(key: "p1") == nil)
            #expect(try await store.property(key: "p1") == nil)
        }
    }

    @Test("Properties: query on each field, limit and key order", arguments: StoreKind.allCases)
    func queryProperties(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let properties = [
                SceneProperty(key: "q3", sceneKey: "s1", name: "size", parent: "o1", assetSubID: "x"),
                SceneProperty(key: "q1", sceneKey: "s2", name: "size", parent: "", assetSubID: "y"),
                SceneProperty(key: "q2", sceneKey: "s1", name: "hue", parent: "o1", assetSubID: ""),
                SceneProperty(key: "q4", sceneKey: "s2", name: "hue", parent: "o2", assetSubID: "x", values: [1]),
            ]
            for property in properties { try await store.createProperty(property) }

            func keys(_ change: (inout PropertyFilter) -> Void, limit: Int = 100) async throws -> [String] {
                var filter = PropertyFilter()
                change(&filter)
                return try await store.properties(matching: filter, limit: limit).map(\.key)
            }

            #expect(try await store.properties(matching: PropertyFilter(), limit: 100) == properties.sorted { $0.key < $1.key })
            #expect(try await keys { $0.name = "size" } == ["q1", "q3"])
            #expect(try await keys { $0.sceneKey = "s1" } == ["q2", "q3"])
            #expect(try await keys { $0.parent = "o1" } == ["q2", "q3"])
            #expect(try await keys { $0.assetSubID = "x" } == ["q3", "q4"])
            #expect(try await keys { $0.name = "hue"; $0.sceneKey = "s2" } == ["q4"])
            #expect(try await keys { $0.name = "nothing" }.isEmpty)
            #expect(try await keys({ _ in }, limit: 3) == ["q1", "q2", "q3"])
            #expect(try await keys({ _ in }, limit: 0).isEmpty)
        }
    }

    @Test("Properties: event values apply as given, only to properties of the update's scene", arguments: StoreKind.allCases)
    func eventPropertyValues(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.createProperty(SceneProperty(key: "p", sceneKey: "s", values: [0]))
            try await store.createProperty(SceneProperty(key: "q", sceneKey: "s"))
            #expect(try await store.applyPropertyValues([]) == 0)
            #expect(try await store.applyPropertyValues([PropertyValuesUpdate(propertyKey: "p", sceneKey: "s", values: [2, 2], sequence: 10)]) == 1)
            #expect(try await store.property(key: "p")?.values == [2, 2])
            #expect(try await store.applyPropertyValues([PropertyValuesUpdate(propertyKey: "p", sceneKey: "t", values: [9], sequence: 11)]) == 0)
            #expect(try await store.applyPropertyValues([PropertyValuesUpdate(propertyKey: "p", sceneKey: "s", values: [3], sequence: 0)]) == 1)
            #expect(try await store.property(key: "p")?.values == [3])
            let changed = try await store.applyPropertyValues([
                PropertyValuesUpdate(propertyKey: "p", sceneKey: "s", values: [4], sequence: 11),
                PropertyValuesUpdate(propertyKey: "q", sceneKey: "s", values: [1, 2, 3, 4, 5], sequence: 1),
                PropertyValuesUpdate(propertyKey: "missing", sceneKey: "s", values: [1], sequence: 1),
            ])
            #expect(changed == 2)
            #expect(try await store.property(key: "p")?.values == [4])
            // At most four values are kept.
            #expect(try await store.property(key: "q")?.values == [1, 2, 3, 4])
        }
    }

    // MARK: Errors

    @Test("Errors: a registration or a link needs its scenes", arguments: StoreKind.allCases)
    func missingScenes(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.createScene(Scene(key: "a"))
            try await Self.expect(.notFound, naming: ["nowhere"]) {
                try await store.register(Device(key: "d1", hostname: "127.0.0.1", port: 4000), inScene: "nowhere")
            }
            try await Self.expect(.notFound) { try await store.setLink(SceneLink(from: "a", to: "nowhere", transform: Self.pose)) }
            try await Self.expect(.notFound) { try await store.setLink(SceneLink(from: "nowhere", to: "a", transform: Self.pose)) }
            #expect(try await store.devices(inScene: "nowhere").isEmpty)
            #expect(try await store.links(touching: ["a"]).isEmpty)
        }
    }

    @Test("Errors: a closed store answers unavailable; closing twice is fine", arguments: StoreKind.allCases)
    func closedStore(kind: StoreKind) async throws {
        try await withTestStore(kind) { location in
            let store = try await location.open()
            try await store.createScene(Scene(key: "s1"))
            try await store.close()
            try await store.close()
            try await Self.expect(.unavailable) { try await store.scene(key: "s1") }
            try await Self.expect(.unavailable) { try await store.applyTransforms([TransformUpdate(objectKey: "o", sceneKey: "s1", transform: .identity, sequence: 1)]) }
        }
    }

    @Test("Errors: a stored column that does not decode is a corrupt error naming table, key and column, and counted", arguments: [StoreKind.sqlite, .postgres])
    func corruptColumns(kind: StoreKind) async throws {
        try await withTestStore(kind) { location in
            let store = try await location.open()
            try await store.createScene(Self.lobby)
            try await store.createScene(Scene(key: "s2"))
            try await store.register(Device(key: "d1", hostname: "127.0.0.1", port: 4000), inScene: "s1")
            try await store.createObject(Self.cube)
            try await store.createObject(SceneObject(key: "o2", sceneKey: "s1"))
            try await store.createProperty(Self.brightness)
            try await store.close()
            try await RawSQL.execute([
                "UPDATE object SET assets = 'not json' WHERE key = 'o1'",
                "UPDATE object SET transform = 'short' WHERE key = 'o2'",
                "UPDATE property SET property_values = '{\"a\":1}' WHERE key = 'p1'",
                "UPDATE device SET rotation = '[1, 2]' WHERE key = 'd1'",
                "UPDATE scene SET tags = '' WHERE key = 's2'",
            ], at: location)

            let metrics = TestMetrics()
            let reopened = try await RawSQL.open(location, metrics: metrics)
            try await Self.expect(.corrupt, naming: ["object", "o1", "assets"]) { try await reopened.object(key: "o1") }
            try await Self.expect(.corrupt, naming: ["object", "o2", "transform"]) { try await reopened.object(key: "o2") }
            try await Self.expect(.corrupt, naming: ["object"]) { try await reopened.objects(matching: ObjectFilter(), limit: 10) }
            try await Self.expect(.corrupt, naming: ["property", "p1", "property_values"]) { try await reopened.property(key: "p1") }
            try await Self.expect(.corrupt, naming: ["device", "d1", "rotation"]) { try await reopened.devices(inScene: "s1") }
            try await Self.expect(.corrupt, naming: ["scene", "s2", "tags"]) { try await reopened.scene(key: "s2") }
            // A read-modify-write never writes a default over the damage.
            try await Self.expect(.corrupt, naming: ["o1"]) { try await reopened.updateObject(key: "o1") { $0.name = "x" } }
            // The rows around them still read.
            #expect(try await reopened.scene(key: "s1") == Self.lobby)
            #expect(try await reopened.memberKeys(ofScene: "s1").objects == ["o1", "o2"])
            // Counted per table, once per row read.
            #expect(try metrics.expectCounter("aesel_store_corrupt_rows_total", [("table", "object")]).totalValue == 4)
            #expect(try metrics.expectCounter("aesel_store_corrupt_rows_total", [("table", "property")]).totalValue == 1)
            #expect(try metrics.expectCounter("aesel_store_corrupt_rows_total", [("table", "device")]).totalValue == 1)
            #expect(try metrics.expectCounter("aesel_store_corrupt_rows_total", [("table", "scene")]).totalValue == 1)
            try await reopened.close()
        }
    }

    @Test("Errors: equal when their codes are; a bounded short description")
    func storeErrors() {
        let duplicate = StoreError(.duplicate, "the key a already exists")
        #expect(duplicate == StoreError(.duplicate, "the key b already exists"))
        #expect(duplicate != StoreError(.notFound, "the key a already exists"))
        #expect(duplicate.shortDescription == "duplicate")
        #expect(StoreError(.notFound, "x").shortDescription == "not_found")
        #expect(StoreError.busy(path: "/data/aesel.sqlite", holders: "held by pid 7").description.contains("held by pid 7"))
        let wrapped = StoreError(.unavailable, "cannot reach it", underlyingError: Refused(reason: "reset"))
        #expect(wrapped.code == .unavailable)
        #expect(wrapped.description.contains("reset"))
    }

    // MARK: Durability

    @Test("Closing and reopening the store keeps every kind of row", arguments: StoreKind.allCases)
    func reopen(kind: StoreKind) async throws {
        try await withTestStore(kind) { location in
            let device = Device(key: "d1", hostname: "127.0.0.1", port: 4001, connectionString: "c", format: .binary, transform: Self.pose)
            let link = SceneLink(from: "s2", to: "s1", transform: Self.pose)
            let store = try await location.open()
            try await store.createScene(Self.lobby)
            try await store.createScene(Scene(key: "s2"))
            try await store.register(device, inScene: "s1")
            try await store.setLink(link)
            try await store.createObject(Self.cube)
            try await store.applyTransforms([TransformUpdate(objectKey: "o1", sceneKey: Self.cube.sceneKey, transform: .identity, sequence: 4)])
            try await store.createProperty(Self.brightness)
            #expect(try await store.assignScene("s1", toPair: "A", ifCurrently: nil))
            #expect(try await store.assignScene("unborn", toPair: "B", ifCurrently: nil))
            try await store.close()

            let reopened = try await location.open()
            var cube = Self.cube
            cube.transform = .identity
            cube.sequence = 4
            #expect(try await reopened.scene(key: "s1") == Self.lobby)
            #expect(try await reopened.scenes(name: nil, region: nil).map(\.key) == ["s1", "s2"])
            #expect(try await reopened.devices(inScene: "s1") == [device])
            #expect(try await reopened.links(touching: ["s1"]) == [link])
            #expect(try await reopened.object(key: "o1") == cube)
            #expect(try await reopened.property(key: "p1") == Self.brightness)
            #expect(try await reopened.pairOfScene("s1") == "A")
            #expect(try await reopened.pairOfScene("unborn") == "B")
            #expect(try await reopened.sceneCountsByPair() == ["A": 1, "B": 1])
            // The reopened store still compare-and-sets.
            #expect(try await !reopened.assignScene("s1", toPair: "B", ifCurrently: nil))
            #expect(try await reopened.assignScene("s1", toPair: "B", ifCurrently: "A"))
            #expect(try await reopened.scenes(onPair: "B") == ["s1", "unborn"])
            try await reopened.close()
        }
    }

    // MARK: PostgreSQL URLs

    @Test("PostgreSQL URLs: user, password, host, port and database; others are refused")
    func postgresURLs() throws {
        #expect(
            try PostgresStore.ConnectionURL("postgres://aesel:p%40ss@db.local:6543/scenes")
                == PostgresStore.ConnectionURL(user: "aesel", password: "p@ss", host: "db.local", port: 6543, database: "scenes")
        )
        #expect(
            try PostgresStore.ConnectionURL("postgresql://postgres@127.0.0.1/postgres")
                == PostgresStore.ConnectionURL(user: "postgres", host: "127.0.0.1", database: "postgres")
        )
        #expect(try PostgresStore.ConnectionURL("postgres://u@h") == PostgresStore.ConnectionURL(user: "u", host: "h"))
        for bad in ["http://u@h/db", "postgres://h:5432/db", "postgres://u@/db", "postgres://u@h/a/b", "not a url"] {
            #expect(throws: StoreError(.invalid, ""), "\(bad)") { try PostgresStore.ConnectionURL(bad) }
        }
        #expect(
            try PostgresStore.ConnectionURL("postgres://u@h/db?sslmode=verify-full&sslrootcert=/etc/ca.pem")
                == PostgresStore.ConnectionURL(user: "u", host: "h", database: "db", tlsMode: .verifyFull, rootCertificate: "/etc/ca.pem")
        )
        #expect(try PostgresStore.ConnectionURL("postgres://u@h/db?sslmode=require").tlsMode == .require)
        #expect(throws: StoreError(.invalid, "")) { try PostgresStore.ConnectionURL("postgres://u@h/db?sslmode=allow") }
        // require encrypts without verifying; verify-ca checks the chain only; verify-full the host too.
        #expect(try PostgresStore.ConnectionURL("postgres://u@h/db").tlsConfiguration(certificateAuthority: nil) == nil)
        #expect(try PostgresStore.ConnectionURL("postgres://u@h/db?sslmode=require").tlsConfiguration(certificateAuthority: nil)?.certificateVerification == CertificateVerification.none)
        #expect(
            try PostgresStore.ConnectionURL("postgres://u@h/db?sslmode=verify-ca").tlsConfiguration(certificateAuthority: nil)?.certificateVerification
                == .noHostnameVerification)
        #expect(
            try PostgresStore.ConnectionURL("postgres://u@h/db?sslmode=verify-full").tlsConfiguration(certificateAuthority: nil)?.certificateVerification
                == .fullVerification)
        #expect(throws: StoreError(.invalid, "")) {
            try PostgresStore.ConnectionURL("postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent.pem").tlsConfiguration(certificateAuthority: nil)
        }
        // The message never shows a password.
        let refused = PostgresStore.invalidURL("mysql://aesel:secret@db/x")
        #expect(!refused.description.contains("secret"))
        #expect(refused.description.contains("mysql://aesel:***@db/x"))
    }
}
