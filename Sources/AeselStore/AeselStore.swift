public import AeselModel
public import ServiceLifecycle

/// Durable storage for scenes, registrations, scene links, objects and properties. SQLite is the
/// embedded back end, PostgreSQL the shared one, and ``InMemoryStore`` the one for in-process tests; all
/// three pass the same contract tests.
///
/// Every mutating call is one transaction, committed before it returns: an acknowledged transaction is
/// never lost. `update…` calls are atomic read-modify-writes: the closure sees the current row and its
/// changes are written only if it returns without throwing (a throw rolls back and is rethrown as is).
/// Everything else a call fails with is a ``StoreError``.
///
/// A store answers from the moment it is opened, so start-up can read it before any service group runs.
/// As a `Service` it belongs first in the group: graceful shutdown reaches it after every service that
/// writes to it (the write-behind's last flush included), and then closes it.
public protocol AeselStore: Service {
    // MARK: Scenes

    /// Creates `scene`; throws ``StoreErrorCode/duplicate`` when its key exists.
    func createScene(_ scene: Scene) async throws
    func scene(key: String) async throws -> Scene?
    /// Returns the updated scene, or nil when there is none with this key.
    func updateScene(key: String, _ change: @escaping @Sendable (inout Scene) throws -> Void) async throws -> Scene?
    /// Deletes the scene with its registrations, links and pair assignment; returns whether it existed.
    /// The assignment goes even when the scene does not exist.
    func deleteScene(key: String) async throws -> Bool
    /// Scenes whose name and region equal the given ones (nil matches any), ordered by key.
    func scenes(name: String?, region: String?) async throws -> [Scene]

    // MARK: Registration

    /// Adds `device` to the scene, or replaces the registration of the same device key there; throws
    /// ``StoreErrorCode/notFound`` when there is no such scene.
    func register(_ device: Device, inScene sceneKey: String) async throws
    /// Returns whether the device was registered there.
    func deregister(deviceKey: String, fromScene sceneKey: String) async throws -> Bool
    /// The scene's devices, ordered by key.
    func devices(inScene sceneKey: String) async throws -> [Device]
    /// Every scene the device is registered in, with its registration there, ordered by scene key.
    func registrations(ofDevice deviceKey: String) async throws -> [(sceneKey: String, device: Device)]
    /// The registration whose session key has this id (sealed events), if any.
    func registration(sessionKeyID: UInt64) async throws -> (sceneKey: String, device: Device)?

    // MARK: Scene links

    /// Creates or replaces the link between `link.from` and `link.to` (in either direction: the pair is
    /// stored once, the opposite direction is replaced); throws ``StoreErrorCode/notFound`` unless both scenes exist.
    func setLink(_ link: SceneLink) async throws
    /// Every link that touches one of `sceneKeys`.
    func links(touching sceneKeys: [String]) async throws -> [SceneLink]

    // MARK: Scene-to-pair mapping

    // Which CLyman/CrazyIvan server pair serves each scene, as the cluster manager (Adrestia) decides.
    // A scene may be assigned before it is created; deleting it removes its assignment. Keys are checked
    // by the callers, like every key the store is given (no NUL, which PostgreSQL refuses; bounded length).

    /// The id of the server pair `sceneKey` is assigned to, or nil.
    func pairOfScene(_ sceneKey: String) async throws -> String?
    /// Assigns `sceneKey` to `pairID` if its current pair is `expected` (nil: not assigned yet); returns whether it did.
    /// A compare-and-set, so two decisions made at once never both win.
    func assignScene(_ sceneKey: String, toPair pairID: String, ifCurrently expected: String?) async throws -> Bool
    /// The scene keys assigned to `pairID`, sorted.
    func scenes(onPair pairID: String) async throws -> [String]
    /// How many scenes each pair holds (pairs with none are absent).
    func sceneCountsByPair() async throws -> [String: Int]

    // MARK: Objects

    /// Creates `object`; throws ``StoreErrorCode/duplicate`` when its key exists.
    func createObject(_ object: SceneObject) async throws
    func object(key: String) async throws -> SceneObject?
    func updateObject(key: String, _ change: @escaping @Sendable (inout SceneObject) throws -> Void) async throws -> SceneObject?
    /// Returns the deleted object.
    func deleteObject(key: String) async throws -> SceneObject?
    /// Objects matching the filter, ordered by key, at most `limit`.
    func objects(matching filter: ObjectFilter, limit: Int) async throws -> [SceneObject]
    /// Every locked object (one with an owner), ordered by key: what the UDP path enforces. Cheap enough
    /// to poll (the SQL back ends keep an index of locked rows only).
    func objectLocks() async throws -> [ObjectLock]
    /// Applies event transforms in one transaction, each only to an object of the update's scene: an event
    /// naming another scene writes nothing. The write-behind hands over the newest update per object in the
    /// order the scene's pair accepted them, so the store applies them as given (of two for one key, the
    /// later). Returns how many objects changed.
    @discardableResult
    func applyTransforms(_ updates: [TransformUpdate]) async throws -> Int

    // MARK: Properties

    /// Creates `property`; throws ``StoreErrorCode/duplicate`` when its key exists.
    func createProperty(_ property: SceneProperty) async throws
    func property(key: String) async throws -> SceneProperty?
    func updateProperty(key: String, _ change: @escaping @Sendable (inout SceneProperty) throws -> Void) async throws -> SceneProperty?
    func deleteProperty(key: String) async throws -> SceneProperty?
    func properties(matching filter: PropertyFilter, limit: Int) async throws -> [SceneProperty]
    /// Applies event values like ``applyTransforms(_:)``.
    @discardableResult
    func applyPropertyValues(_ updates: [PropertyValuesUpdate]) async throws -> Int

    /// The keys of the objects and of the properties in `sceneKey`: what the UDP path may update there.
    func memberKeys(ofScene sceneKey: String) async throws -> SceneMemberKeys

    /// Releases the store; safe to call twice. Calls made afterwards fail with ``StoreErrorCode/unavailable``.
    func close() async throws
}

extension AeselStore {
    /// Waits for graceful shutdown, then closes the store. A cancelled group leaves the closing to the
    /// store's owner, who closes it once every service has returned, so a last flush still gets through.
    public func run() async throws {
        try? await gracefulShutdown()
        guard !Task.isCancelled else { return }
        try await close()
    }
}

/// Exact-match criteria for an object query (reference 1.8). Empty strings match anything. One asset
/// means "has this asset"; more mean "has exactly these assets, in this order".
public struct ObjectFilter: Sendable, Hashable {
    public var name = ""
    public var sceneKey = ""
    public var type = ""
    public var subtype = ""
    public var owner = ""
    public var parent = ""
    public var assetSubID = ""
    public var assets: [String] = []

    public init() {}

    /// The columns that must equal a given value: the fields that are not empty.
    public var exactMatches: [(column: String, value: String)] {
        [
            ("name", name), ("scene_key", sceneKey), ("type", type), ("subtype", subtype),
            ("owner", owner), ("parent", parent), ("asset_sub_id", assetSubID),
        ].filter { !$0.1.isEmpty }
    }
}

/// Who holds an object's lock.
public struct ObjectLock: Sendable, Hashable {
    public var objectKey: String
    public var sceneKey: String
    /// The device key; never empty.
    public var owner: String

    public init(objectKey: String, sceneKey: String, owner: String) {
        self.objectKey = objectKey
        self.sceneKey = sceneKey
        self.owner = owner
    }
}

/// Exact-match criteria for a property query: `name`, `parent`, `asset_sub_id`, `scene`.
public struct PropertyFilter: Sendable, Hashable {
    public var name = ""
    public var sceneKey = ""
    public var parent = ""
    public var assetSubID = ""

    public init() {}

    /// The columns that must equal a given value: the fields that are not empty.
    public var exactMatches: [(column: String, value: String)] {
        [("name", name), ("scene_key", sceneKey), ("parent", parent), ("asset_sub_id", assetSubID)].filter { !$0.1.isEmpty }
    }
}

/// The keys of a scene's objects and properties.
public struct SceneMemberKeys: Sendable, Hashable {
    public var objects: Set<String>
    public var properties: Set<String>

    public init(objects: Set<String> = [], properties: Set<String> = []) {
        self.objects = objects
        self.properties = properties
    }
}

/// The newest transform of one object, as the write-behind persister hands it to the store.
public struct TransformUpdate: Sendable, Hashable {
    public var objectKey: String
    /// The scene the event named; the update applies only to an object of this scene.
    public var sceneKey: String
    public var transform: Transform
    /// The event's sequence number, kept with the transform (0 when not numbered, or set by a transaction).
    public var sequence: UInt64

    public init(objectKey: String, sceneKey: String, transform: Transform, sequence: UInt64) {
        self.objectKey = objectKey
        self.sceneKey = sceneKey
        self.transform = transform
        self.sequence = sequence
    }
}

/// The newest values of one property, from UDP events.
public struct PropertyValuesUpdate: Sendable, Hashable {
    public var propertyKey: String
    public var sceneKey: String
    public var values: [Double]
    public var sequence: UInt64

    public init(propertyKey: String, sceneKey: String, values: [Double], sequence: UInt64) {
        self.propertyKey = propertyKey
        self.sceneKey = sceneKey
        self.values = values
        self.sequence = sequence
    }
}

// MARK: What the back ends share

/// A scene, object or property: a row its key names, which an `update…` never renames.
package protocol StoredRecord: Sendable {
    var key: String { get set }
    /// The record as every back end keeps it.
    var stored: Self { get }
}

extension StoredRecord {
    package var stored: Self { self }
}

extension Scene: StoredRecord {}
extension SceneObject: StoredRecord {}

extension SceneProperty: StoredRecord {
    /// The values a store keeps: at most ``maximumValues``.
    package static func storedValues(_ values: [Double]) -> [Double] {
        Array(values.prefix(maximumValues))
    }

    package var stored: SceneProperty {
        var property = self
        property.values = Self.storedValues(values)
        return property
    }
}

/// An event's update of one object or property.
package protocol EventUpdate: Sendable {
    /// The key of the object or property.
    var key: String { get }
    var sceneKey: String { get }
    var sequence: UInt64 { get }
}

extension TransformUpdate: EventUpdate {
    package var key: String { objectKey }
}

extension PropertyValuesUpdate: EventUpdate {
    package var key: String { propertyKey }
}

/// The updates with the last of each key's, in the order those came: what applying them one after the
/// other leaves, written once per key.
package func lastPerKey<Update: EventUpdate>(_ updates: [Update]) -> [Update] {
    var last: [String: Int] = [:]
    for (index, update) in updates.enumerated() { last[update.key] = index }
    guard last.count < updates.count else { return updates }
    return updates.indices.filter { last[updates[$0].key] == $0 }.map { updates[$0] }
}
