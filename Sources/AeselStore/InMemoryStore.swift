public import AeselModel
import Synchronization
import NIOConcurrencyHelpers

/// A store in memory, with the semantics of the SQL back ends: for in-process tests, and as the contract
/// suite's third back end. Every call takes one lock, so each is atomic as a transaction is; an `update…`
/// closure runs under it and its changes are kept only if it returns.
public final class InMemoryStore: AeselStore {
    /// The rows, shared by every store ``reopened()`` from this one.
    private final class Storage: Sendable {
        let tables = NIOLockedValueBox(Tables())
    }

    private struct Tables {
        var scenes: [String: Scene] = [:]
        /// Scene key, then device key.
        var devices: [String: [String: Device]] = [:]
        var links: [LinkKey: DeviceTransform] = [:]
        var pairs: [String: String] = [:]
        var objects: [String: SceneObject] = [:]
        var properties: [String: SceneProperty] = [:]
    }

    private struct LinkKey: Hashable {
        var from: String
        var to: String
    }

    private let storage: Storage
    private let closed = Atomic(false)

    public init() {
        storage = Storage()
    }

    private init(storage: Storage) {
        self.storage = storage
    }

    /// Another open store on the same rows, as opening a database file again gives: what a test that
    /// closes and reopens a store uses.
    public func reopened() -> InMemoryStore {
        InMemoryStore(storage: storage)
    }

    public func close() async throws {
        closed.store(true, ordering: .relaxed)
    }

    /// Runs `body` under the lock, unless the store is closed.
    private func withTables<Result>(_ body: (inout Tables) throws -> Result) throws -> Result {
        guard !closed.load(ordering: .relaxed) else { throw StoreError(.unavailable, "the in-memory store is closed") }
        return try storage.tables.withLockedValue { try body(&$0) }
    }

    /// Keys in byte order, as the SQL back ends sort them (binary collation).
    private static func byteOrder(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
    }

    private static func sceneNotFound(_ key: String) -> StoreError {
        StoreError(.notFound, "there is no scene \(key)")
    }

    /// Records sorted by key, at most `limit`.
    private static func inKeyOrder<Record: StoredRecord>(_ records: some Sequence<Record>, limit: Int = .max) -> [Record] {
        Array(records.sorted { byteOrder($0.key, $1.key) }.prefix(max(0, limit)))
    }

    /// Adds `record` to `table`; throws ``StoreErrorCode/duplicate`` when its key exists.
    private func create<Record: StoredRecord>(_ record: Record, in table: WritableKeyPath<Tables, [String: Record]>) throws {
        try withTables { tables in
            guard tables[keyPath: table][record.key] == nil else { throw StoreError(.duplicate, "the key \(record.key) already exists") }
            tables[keyPath: table][record.key] = record.stored
        }
    }

    /// Lets `change` edit the row `key` of `table` and keeps what it leaves, under the same key; nil when
    /// there is no such row.
    private func update<Record: StoredRecord>(
        _ table: WritableKeyPath<Tables, [String: Record]>, key: String, _ change: (inout Record) throws -> Void
    ) throws -> Record? {
        try withTables { tables in
            guard var record = tables[keyPath: table][key] else { return nil }
            try change(&record)
            record.key = key
            record = record.stored
            tables[keyPath: table][key] = record
            return record
        }
    }

    /// Writes the last update of each key with `write`, and its sequence number, to the row of `table` it
    /// names if that row is in the update's scene; returns how many rows changed.
    private func apply<Update: EventUpdate, Record: SceneMember>(
        _ updates: [Update], to table: WritableKeyPath<Tables, [String: Record]>, _ write: (inout Record, Update) -> Void
    ) throws -> Int {
        try withTables { tables in
            var changed = 0
            for update in lastPerKey(updates) {
                guard var record = tables[keyPath: table][update.key], record.sceneKey == update.sceneKey else { continue }
                write(&record, update)
                record.sequence = update.sequence
                tables[keyPath: table][update.key] = record
                changed += 1
            }
            return changed
        }
    }

    // MARK: Scenes

    public func createScene(_ scene: Scene) async throws {
        try create(scene, in: \.scenes)
    }

    public func scene(key: String) async throws -> Scene? {
        try withTables { $0.scenes[key] }
    }

    public func updateScene(key: String, _ change: @escaping @Sendable (inout Scene) throws -> Void) async throws -> Scene? {
        try update(\.scenes, key: key, change)
    }

    public func deleteScene(key: String) async throws -> Bool {
        try withTables { tables in
            tables.pairs[key] = nil
            tables.devices[key] = nil
            tables.links = tables.links.filter { $0.key.from != key && $0.key.to != key }
            return tables.scenes.removeValue(forKey: key) != nil
        }
    }

    public func scenes(name: String?, region: String?) async throws -> [Scene] {
        try withTables { tables in
            let matching = tables.scenes.values.filter { scene in
                name.map { scene.name == $0 } ?? true && region.map { scene.region == $0 } ?? true
            }
            return Self.inKeyOrder(matching)
        }
    }

    // MARK: Registration

    public func register(_ device: Device, inScene sceneKey: String) async throws {
        try withTables { tables in
            guard tables.scenes[sceneKey] != nil else { throw Self.sceneNotFound(sceneKey) }
            tables.devices[sceneKey, default: [:]][device.key] = device
        }
    }

    public func deregister(deviceKey: String, fromScene sceneKey: String) async throws -> Bool {
        try withTables { $0.devices[sceneKey]?.removeValue(forKey: deviceKey) != nil }
    }

    public func devices(inScene sceneKey: String) async throws -> [Device] {
        try withTables { tables in
            (tables.devices[sceneKey] ?? [:]).values.sorted { Self.byteOrder($0.key, $1.key) }
        }
    }

    public func registrations(ofDevice deviceKey: String) async throws -> [(sceneKey: String, device: Device)] {
        try withTables { tables in
            tables.devices.compactMap { sceneKey, devices in devices[deviceKey].map { (sceneKey: sceneKey, device: $0) } }
                .sorted { Self.byteOrder($0.sceneKey, $1.sceneKey) }
        }
    }

    public func registration(sessionKeyID: UInt64) async throws -> (sceneKey: String, device: Device)? {
        try withTables { tables in
            for (sceneKey, devices) in tables.devices {
                if let device = devices.values.first(where: { $0.sessionKey?.id == sessionKeyID }) { return (sceneKey, device) }
            }
            return nil
        }
    }

    // MARK: Scene links

    public func setLink(_ link: SceneLink) async throws {
        try withTables { tables in
            for key in [link.from, link.to] where tables.scenes[key] == nil { throw Self.sceneNotFound(key) }
            tables.links[LinkKey(from: link.to, to: link.from)] = nil
            tables.links[LinkKey(from: link.from, to: link.to)] = link.transform
        }
    }

    public func links(touching sceneKeys: [String]) async throws -> [SceneLink] {
        let touched = Set(sceneKeys)
        return try withTables { tables in
            tables.links.filter { touched.contains($0.key.from) || touched.contains($0.key.to) }
                .map { SceneLink(from: $0.key.from, to: $0.key.to, transform: $0.value) }
                .sorted { $0.from == $1.from ? Self.byteOrder($0.to, $1.to) : Self.byteOrder($0.from, $1.from) }
        }
    }

    // MARK: Scene-to-pair mapping

    public func pairOfScene(_ sceneKey: String) async throws -> String? {
        try withTables { $0.pairs[sceneKey] }
    }

    public func assignScene(_ sceneKey: String, toPair pairID: String, ifCurrently expected: String?) async throws -> Bool {
        try withTables { tables in
            guard tables.pairs[sceneKey] == expected else { return false }
            tables.pairs[sceneKey] = pairID
            return true
        }
    }

    public func scenes(onPair pairID: String) async throws -> [String] {
        try withTables { tables in
            tables.pairs.filter { $0.value == pairID }.map(\.key).sorted(by: Self.byteOrder)
        }
    }

    public func sceneCountsByPair() async throws -> [String: Int] {
        try withTables { tables in
            tables.pairs.values.reduce(into: [:]) { counts, pairID in counts[pairID, default: 0] += 1 }
        }
    }

    // MARK: Objects

    public func createObject(_ object: SceneObject) async throws {
        try create(object, in: \.objects)
    }

    public func object(key: String) async throws -> SceneObject? {
        try withTables { $0.objects[key] }
    }

    public func updateObject(key: String, _ change: @escaping @Sendable (inout SceneObject) throws -> Void) async throws -> SceneObject? {
        try update(\.objects, key: key, change)
    }

    public func deleteObject(key: String) async throws -> SceneObject? {
        try withTables { $0.objects.removeValue(forKey: key) }
    }

    public func objects(matching filter: ObjectFilter, limit: Int) async throws -> [SceneObject] {
        try withTables { tables in
            let matching = tables.objects.values.filter { object in
                let fields = [
                    "name": object.name, "scene_key": object.sceneKey, "type": object.type, "subtype": object.subtype,
                    "owner": object.owner, "parent": object.parent, "asset_sub_id": object.assetSubID,
                ]
                guard filter.exactMatches.allSatisfy({ fields[$0.column] == $0.value }) else { return false }
                switch filter.assets.count {
                case 0: return true
                case 1: return object.assets.contains(filter.assets[0])
                default: return object.assets == filter.assets
                }
            }
            return Self.inKeyOrder(matching, limit: limit)
        }
    }

    public func applyTransforms(_ updates: [TransformUpdate]) async throws -> Int {
        try apply(updates, to: \.objects) { $0.transform = $1.transform }
    }

    // MARK: Properties

    public func createProperty(_ property: SceneProperty) async throws {
        try create(property, in: \.properties)
    }

    public func property(key: String) async throws -> SceneProperty? {
        try withTables { $0.properties[key] }
    }

    public func updateProperty(key: String, _ change: @escaping @Sendable (inout SceneProperty) throws -> Void) async throws -> SceneProperty? {
        try update(\.properties, key: key, change)
    }

    public func deleteProperty(key: String) async throws -> SceneProperty? {
        try withTables { $0.properties.removeValue(forKey: key) }
    }

    public func properties(matching filter: PropertyFilter, limit: Int) async throws -> [SceneProperty] {
        try withTables { tables in
            let matching = tables.properties.values.filter { property in
                let fields = ["name": property.name, "scene_key": property.sceneKey, "parent": property.parent, "asset_sub_id": property.assetSubID]
                return filter.exactMatches.allSatisfy { fields[$0.column] == $0.value }
            }
            return Self.inKeyOrder(matching, limit: limit)
        }
    }

    public func applyPropertyValues(_ updates: [PropertyValuesUpdate]) async throws -> Int {
        try apply(updates, to: \.properties) { $0.values = SceneProperty.storedValues($1.values) }
    }

    public func objectLocks() async throws -> [ObjectLock] {
        try withTables { tables in
            tables.objects.values.filter { !$0.owner.isEmpty }.sorted { $0.key < $1.key }
                .map { ObjectLock(objectKey: $0.key, sceneKey: $0.sceneKey, owner: $0.owner) }
        }
    }

    public func memberKeys(ofScene sceneKey: String) async throws -> SceneMemberKeys {
        try withTables { tables in
            SceneMemberKeys(
                objects: Set(tables.objects.values.filter { $0.sceneKey == sceneKey }.map(\.key)),
                properties: Set(tables.properties.values.filter { $0.sceneKey == sceneKey }.map(\.key))
            )
        }
    }
}

/// An object or property: what an event update writes to, within its scene.
private protocol SceneMember: StoredRecord {
    var sceneKey: String { get }
    var sequence: UInt64 { get set }
}

extension SceneObject: SceneMember {}
extension SceneProperty: SceneMember {}
