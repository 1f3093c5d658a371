public import AeselModel
public import AeselStore
import Foundation
import GRDB

#if canImport(Glibc)
import Glibc
#endif

/// The embedded store: one SQLite file, in WAL mode with full synchronous commits.
///
/// GRDB runs every statement on its own serial writer queue (and a reader pool), so callers await
/// without blocking an event loop. Writes are serialized, which makes every `update…` atomic.
public final class SQLiteStore: AeselStore {
    private let pool: DatabasePool

    /// Opens (creating if needed) the database at `path` and brings its schema up to date, in this
    /// process alone: ``open(dataFolder:patience:)`` is safe when several processes open one file.
    init(path: String) throws {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        configuration.busyMode = .timeout(5)
        pool = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(pool)
    }

    /// Opens `aesel.sqlite` in the data folder, creating both, when other processes may be opening it
    /// at the same moment (the two halves of a pair started together).
    ///
    /// Switching to WAL and migrating are not safe to race: SQLite answers "database is locked" at once,
    /// without waiting, when two connections both try to take the write lock from a read lock, and GRDB
    /// chooses the migrations to run before it takes the lock. So the set-up runs under an exclusive
    /// lock on `aesel.sqlite.setup` beside the database, and a database still busy (another program
    /// holding a write lock) is retried for up to `patience`, then reported with who holds it.
    public static func open(dataFolder: String, patience: Duration = .seconds(30)) async throws -> SQLiteStore {
        try FileManager.default.createDirectory(atPath: dataFolder, withIntermediateDirectories: true)
        let path = (dataFolder as NSString).appendingPathComponent("aesel.sqlite")
        let deadline = ContinuousClock.now + patience
        let setupLock = try SetupLock(path: path + ".setup")
        defer { setupLock.release() }
        var lastError: any Error
        repeat {
            do {
                if try setupLock.acquire() { return try SQLiteStore(path: path) }
                lastError = StoreError.busy(path: path, holders: "another process setting it up")
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
                lastError = error
            }
            try await Task.sleep(for: .milliseconds(50))
        } while ContinuousClock.now < deadline
        throw StoreError.busy(path: path, holders: Self.holders(of: path) + " (last error: \(lastError))")
    }

    /// The processes that have the database open, from /proc (Linux), for the message of a busy store.
    static func holders(of path: String) -> String {
        let me = ProcessInfo.processInfo.processIdentifier
        let processes = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        var holders: [String] = []
        for pid in processes.compactMap(Int32.init) where pid != me {
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
            let holds = fds.contains { fd in
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"))?.hasPrefix(path) ?? false
            }
            guard holds else { continue }
            let command = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8))?.replacingOccurrences(of: "\0", with: " ") ?? ""
            holders.append("pid \(pid) \(command.trimmingCharacters(in: .whitespaces))")
        }
        return holders.isEmpty ? "no other process has it open" : "held by " + holders.joined(separator: ", ")
    }

    /// An exclusive `flock` on a file of its own, taken without blocking.
    private final class SetupLock {
        private let descriptor: Int32
        private var held = false

        init(path: String) throws {
            descriptor = Glibc.open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw StoreError.busy(path: path, holders: "cannot open it: errno \(errno)") }
        }

        func acquire() throws -> Bool {
            if held { return true }
            held = flock(descriptor, LOCK_EX | LOCK_NB) == 0
            return held
        }

        func release() {
            if held { flock(descriptor, LOCK_UN) }
            Glibc.close(descriptor)
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE scene (
                        key TEXT PRIMARY KEY NOT NULL,
                        name TEXT NOT NULL DEFAULT '',
                        description TEXT NOT NULL DEFAULT '',
                        thumbnail TEXT NOT NULL DEFAULT '',
                        region TEXT NOT NULL DEFAULT '',
                        latitude DOUBLE,
                        longitude DOUBLE,
                        distance DOUBLE NOT NULL DEFAULT 0,
                        active BOOLEAN NOT NULL DEFAULT 1,
                        public BOOLEAN NOT NULL DEFAULT 1,
                        assets TEXT NOT NULL DEFAULT '[]',
                        tags TEXT NOT NULL DEFAULT '[]'
                    );
                    CREATE TABLE device (
                        scene_key TEXT NOT NULL REFERENCES scene(key) ON DELETE CASCADE,
                        key TEXT NOT NULL,
                        hostname TEXT NOT NULL,
                        port INTEGER NOT NULL,
                        connection_string TEXT NOT NULL DEFAULT '',
                        format TEXT NOT NULL DEFAULT 'json',
                        translation TEXT NOT NULL DEFAULT '[0,0,0]',
                        rotation TEXT NOT NULL DEFAULT '[0,0,0]',
                        PRIMARY KEY (scene_key, key)
                    );
                    CREATE TABLE object (
                        key TEXT PRIMARY KEY NOT NULL,
                        scene_key TEXT NOT NULL,
                        name TEXT NOT NULL DEFAULT '',
                        type TEXT NOT NULL DEFAULT '',
                        subtype TEXT NOT NULL DEFAULT '',
                        owner TEXT NOT NULL DEFAULT '',
                        parent TEXT NOT NULL DEFAULT '',
                        asset_sub_id TEXT NOT NULL DEFAULT '',
                        transform BLOB NOT NULL,
                        assets TEXT NOT NULL DEFAULT '[]',
                        seq INTEGER NOT NULL DEFAULT 0
                    );
                    CREATE INDEX object_scene ON object(scene_key);
                    """
            )
        }
        migrator.registerMigration("v2") { db in
            try db.execute(
                sql: """
                    ALTER TABLE object ADD COLUMN actions TEXT NOT NULL DEFAULT '[]';
                    CREATE INDEX device_key ON device(key);
                    CREATE TABLE scene_link (
                        from_scene TEXT NOT NULL REFERENCES scene(key) ON DELETE CASCADE,
                        to_scene TEXT NOT NULL REFERENCES scene(key) ON DELETE CASCADE,
                        translation TEXT NOT NULL,
                        rotation TEXT NOT NULL,
                        PRIMARY KEY (from_scene, to_scene)
                    );
                    CREATE TABLE property (
                        key TEXT PRIMARY KEY NOT NULL,
                        scene_key TEXT NOT NULL,
                        name TEXT NOT NULL DEFAULT '',
                        parent TEXT NOT NULL DEFAULT '',
                        asset_sub_id TEXT NOT NULL DEFAULT '',
                        property_values TEXT NOT NULL DEFAULT '[]',
                        actions TEXT NOT NULL DEFAULT '[]',
                        seq INTEGER NOT NULL DEFAULT 0
                    );
                    CREATE INDEX property_scene ON property(scene_key);
                    """
            )
        }
        migrator.registerMigration("v3") { db in
            // Queries match names and parents exactly (reference 1.8); lock reloads look for owners.
            try db.execute(
                sql: """
                    CREATE INDEX object_name ON object(name);
                    CREATE INDEX object_parent ON object(parent);
                    CREATE INDEX object_owner ON object(owner) WHERE owner <> '';
                    CREATE INDEX property_name ON property(name);
                    """
            )
        }
        migrator.registerMigration("v4") { db in
            // Adrestia's scene-to-pair mapping. No foreign key: a scene may be assigned before it exists.
            try db.execute(
                sql: """
                    CREATE TABLE scene_pairs (
                        scene_key TEXT PRIMARY KEY NOT NULL,
                        pair_id TEXT NOT NULL
                    );
                    CREATE INDEX scene_pairs_pair ON scene_pairs(pair_id);
                    """
            )
        }
        return migrator
    }

    // MARK: Scenes

    private static let sceneColumns = "key, name, description, thumbnail, region, latitude, longitude, distance, active, public, assets, tags"

    private static func sceneArguments(_ scene: Scene) -> [(any DatabaseValueConvertible)?] {
        [
            scene.key, scene.name, scene.description, scene.thumbnail, scene.region, scene.latitude, scene.longitude,
            scene.distance, scene.isActive, scene.isPublic, ColumnCoding.json(scene.assets), ColumnCoding.json(scene.tags),
        ]
    }

    private static func scene(_ row: Row) -> Scene {
        Scene(
            key: row["key"],
            name: row["name"],
            description: row["description"],
            thumbnail: row["thumbnail"],
            region: row["region"],
            latitude: row["latitude"],
            longitude: row["longitude"],
            distance: row["distance"],
            isActive: row["active"],
            isPublic: row["public"],
            assets: ColumnCoding.decode(row["assets"]) ?? [],
            tags: ColumnCoding.decode(row["tags"]) ?? []
        )
    }

    public func createScene(_ scene: Scene) async throws {
        try await write(duplicateKey: scene.key) { db in
            try db.execute(sql: "INSERT INTO scene (\(Self.sceneColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", arguments: StatementArguments(Self.sceneArguments(scene)))
        }
    }

    public func scene(key: String) async throws -> Scene? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM scene WHERE key = ?", arguments: [key]).map(Self.scene)
        }
    }

    public func updateScene(key: String, _ change: @escaping @Sendable (inout Scene) throws -> Void) async throws -> Scene? {
        try await readModifyWrite("scene", key: key, decode: Self.scene, change: change) { db, scene in
            var scene = scene
            scene.key = key
            try db.execute(
                sql: "UPDATE scene SET name = ?, description = ?, thumbnail = ?, region = ?, latitude = ?, longitude = ?, distance = ?, active = ?, public = ?, assets = ?, tags = ? WHERE key = ?",
                arguments: StatementArguments(Array(Self.sceneArguments(scene).dropFirst()) + [key])
            )
            return scene
        }
    }

    public func deleteScene(key: String) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM scene_pairs WHERE scene_key = ?", arguments: [key])
            try db.execute(sql: "DELETE FROM scene WHERE key = ?", arguments: [key])
            return db.changesCount > 0
        }
    }

    public func scenes(name: String?, region: String?) async throws -> [Scene] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM scene WHERE (? IS NULL OR name = ?) AND (? IS NULL OR region = ?) ORDER BY key",
                arguments: [name, name, region, region]
            ).map(Self.scene)
        }
    }

    // MARK: Registration

    private static func device(_ row: Row) -> Device {
        Device(
            key: row["key"],
            hostname: row["hostname"],
            port: row["port"],
            connectionString: row["connection_string"],
            format: EventFormat(rawValue: row["format"]) ?? .json,
            transform: DeviceTransform(translation: ColumnCoding.vector(row["translation"]), rotation: ColumnCoding.vector(row["rotation"]))
        )
    }

    public func register(_ device: Device, inScene sceneKey: String) async throws {
        try await pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO device (scene_key, key, hostname, port, connection_string, format, translation, rotation)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (scene_key, key) DO UPDATE SET
                        hostname = excluded.hostname, port = excluded.port,
                        connection_string = excluded.connection_string, format = excluded.format,
                        translation = excluded.translation, rotation = excluded.rotation
                    """,
                arguments: [
                    sceneKey, device.key, device.hostname, device.port, device.connectionString, device.format.rawValue,
                    ColumnCoding.json(device.transform.translation), ColumnCoding.json(device.transform.rotation),
                ]
            )
        }
    }

    public func deregister(deviceKey: String, fromScene sceneKey: String) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM device WHERE scene_key = ? AND key = ?", arguments: [sceneKey, deviceKey])
            return db.changesCount > 0
        }
    }

    public func devices(inScene sceneKey: String) async throws -> [Device] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM device WHERE scene_key = ? ORDER BY key", arguments: [sceneKey]).map(Self.device)
        }
    }

    public func registrations(ofDevice deviceKey: String) async throws -> [(sceneKey: String, device: Device)] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM device WHERE key = ? ORDER BY scene_key", arguments: [deviceKey]).map { row in
                (sceneKey: row["scene_key"] as String, device: Self.device(row))
            }
        }
    }

    // MARK: Scene links

    public func setLink(_ link: SceneLink) async throws {
        try await pool.write { db in
            try db.execute(
                sql: "DELETE FROM scene_link WHERE (from_scene = ? AND to_scene = ?) OR (from_scene = ? AND to_scene = ?)",
                arguments: [link.from, link.to, link.to, link.from]
            )
            try db.execute(
                sql: "INSERT INTO scene_link (from_scene, to_scene, translation, rotation) VALUES (?, ?, ?, ?)",
                arguments: [link.from, link.to, ColumnCoding.json(link.transform.translation), ColumnCoding.json(link.transform.rotation)]
            )
        }
    }

    public func links(touching sceneKeys: [String]) async throws -> [SceneLink] {
        guard !sceneKeys.isEmpty else { return [] }
        return try await pool.read { db in
            let marks = Array(repeating: "?", count: sceneKeys.count).joined(separator: ", ")
            return try Row.fetchAll(
                db,
                sql: "SELECT * FROM scene_link WHERE from_scene IN (\(marks)) OR to_scene IN (\(marks)) ORDER BY from_scene, to_scene",
                arguments: StatementArguments(sceneKeys + sceneKeys)
            ).map { row in
                SceneLink(
                    from: row["from_scene"],
                    to: row["to_scene"],
                    transform: DeviceTransform(translation: ColumnCoding.vector(row["translation"]), rotation: ColumnCoding.vector(row["rotation"]))
                )
            }
        }
    }

    // MARK: Scene-to-pair mapping

    public func pairOfScene(_ sceneKey: String) async throws -> String? {
        try await pool.read { db in
            try String.fetchOne(db, sql: "SELECT pair_id FROM scene_pairs WHERE scene_key = ?", arguments: [sceneKey])
        }
    }

    public func assignScene(_ sceneKey: String, toPair pairID: String, ifCurrently expected: String?) async throws -> Bool {
        // One statement on SQLite's single writer: the check and the write cannot be split.
        try await pool.write { db in
            if let expected {
                try db.execute(
                    sql: "UPDATE scene_pairs SET pair_id = ? WHERE scene_key = ? AND pair_id = ?",
                    arguments: [pairID, sceneKey, expected]
                )
            } else {
                try db.execute(
                    sql: "INSERT INTO scene_pairs (scene_key, pair_id) VALUES (?, ?) ON CONFLICT (scene_key) DO NOTHING",
                    arguments: [sceneKey, pairID]
                )
            }
            return db.changesCount > 0
        }
    }

    public func scenes(onPair pairID: String) async throws -> [String] {
        try await pool.read { db in
            try String.fetchAll(db, sql: "SELECT scene_key FROM scene_pairs WHERE pair_id = ? ORDER BY scene_key", arguments: [pairID])
        }
    }

    public func sceneCountsByPair() async throws -> [String: Int] {
        try await pool.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT pair_id, COUNT(*) AS scenes FROM scene_pairs GROUP BY pair_id")
            return Dictionary(uniqueKeysWithValues: rows.map { ($0["pair_id"] as String, $0["scenes"] as Int) })
        }
    }

    // MARK: Objects

    private static func object(_ row: Row) -> SceneObject {
        SceneObject(
            key: row["key"],
            sceneKey: row["scene_key"],
            name: row["name"],
            type: row["type"],
            subtype: row["subtype"],
            owner: row["owner"],
            parent: row["parent"],
            assetSubID: row["asset_sub_id"],
            transform: ColumnCoding.transform(row["transform"]),
            assets: ColumnCoding.decode(row["assets"]) ?? [],
            actions: ColumnCoding.decode(row["actions"]) ?? [],
            sequence: UInt64(bitPattern: row["seq"] as Int64)
        )
    }

    private static func objectArguments(_ object: SceneObject) -> [(any DatabaseValueConvertible)?] {
        [
            object.sceneKey, object.name, object.type, object.subtype, object.owner, object.parent, object.assetSubID,
            ColumnCoding.blob(object.transform), ColumnCoding.json(object.assets), ColumnCoding.json(object.actions),
            Int64(bitPattern: object.sequence), object.key,
        ]
    }

    public func createObject(_ object: SceneObject) async throws {
        try await write(duplicateKey: object.key) { db in
            try db.execute(
                sql: """
                    INSERT INTO object (scene_key, name, type, subtype, owner, parent, asset_sub_id, transform, assets, actions, seq, key)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: StatementArguments(Self.objectArguments(object))
            )
        }
    }

    public func object(key: String) async throws -> SceneObject? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM object WHERE key = ?", arguments: [key]).map(Self.object)
        }
    }

    public func updateObject(key: String, _ change: @escaping @Sendable (inout SceneObject) throws -> Void) async throws -> SceneObject? {
        try await readModifyWrite("object", key: key, decode: Self.object, change: change) { db, object in
            var object = object
            object.key = key
            try db.execute(
                sql: """
                    UPDATE object SET scene_key = ?, name = ?, type = ?, subtype = ?, owner = ?, parent = ?, asset_sub_id = ?,
                        transform = ?, assets = ?, actions = ?, seq = ? WHERE key = ?
                    """,
                arguments: StatementArguments(Self.objectArguments(object))
            )
            return object
        }
    }

    public func deleteObject(key: String) async throws -> SceneObject? {
        try await deleteReturning("object", key: key, decode: Self.object)
    }

    public func objects(matching filter: ObjectFilter, limit: Int) async throws -> [SceneObject] {
        var conditions: [String] = []
        var arguments: [(any DatabaseValueConvertible)?] = []
        for (column, value) in filter.exactMatches {
            conditions.append("\(column) = ?")
            arguments.append(value)
        }
        if filter.lockedOnly {
            conditions.append("owner <> ''")
        }
        if filter.assets.count == 1 {
            conditions.append("EXISTS (SELECT 1 FROM json_each(object.assets) WHERE json_each.value = ?)")
            arguments.append(filter.assets[0])
        } else if filter.assets.count > 1 {
            conditions.append("assets = ?")
            arguments.append(ColumnCoding.json(filter.assets))
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        arguments.append(max(0, limit))
        let statementArguments = StatementArguments(arguments)
        return try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM object \(whereClause) ORDER BY key LIMIT ?", arguments: statementArguments).map(Self.object)
        }
    }

    public func applyTransforms(_ updates: [TransformUpdate]) async throws -> Int {
        try await applyEventUpdates(
            sql: "UPDATE object SET transform = ?, seq = ? WHERE key = ? AND scene_key = ?",
            updates.map { ($0.objectKey, $0.sceneKey, ColumnCoding.blob($0.transform), $0.sequence) }
        )
    }

    // MARK: Properties

    private static func property(_ row: Row) -> SceneProperty {
        SceneProperty(
            key: row["key"],
            sceneKey: row["scene_key"],
            name: row["name"],
            parent: row["parent"],
            assetSubID: row["asset_sub_id"],
            values: ColumnCoding.decode(row["property_values"]) ?? [],
            actions: ColumnCoding.decode(row["actions"]) ?? [],
            sequence: UInt64(bitPattern: row["seq"] as Int64)
        )
    }

    private static func propertyArguments(_ property: SceneProperty) -> StatementArguments {
        [
            property.sceneKey, property.name, property.parent, property.assetSubID, ColumnCoding.json(property.values),
            ColumnCoding.json(property.actions), Int64(bitPattern: property.sequence), property.key,
        ]
    }

    public func createProperty(_ property: SceneProperty) async throws {
        try await write(duplicateKey: property.key) { db in
            try db.execute(
                sql: "INSERT INTO property (scene_key, name, parent, asset_sub_id, property_values, actions, seq, key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: Self.propertyArguments(property)
            )
        }
    }

    public func property(key: String) async throws -> SceneProperty? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM property WHERE key = ?", arguments: [key]).map(Self.property)
        }
    }

    public func updateProperty(key: String, _ change: @escaping @Sendable (inout SceneProperty) throws -> Void) async throws -> SceneProperty? {
        try await readModifyWrite("property", key: key, decode: Self.property, change: { property in
            try change(&property)
            property.values = Array(property.values.prefix(SceneProperty.maximumValues))
        }) { db, property in
            var property = property
            property.key = key
            try db.execute(
                sql: "UPDATE property SET scene_key = ?, name = ?, parent = ?, asset_sub_id = ?, property_values = ?, actions = ?, seq = ? WHERE key = ?",
                arguments: Self.propertyArguments(property)
            )
            return property
        }
    }

    public func deleteProperty(key: String) async throws -> SceneProperty? {
        try await deleteReturning("property", key: key, decode: Self.property)
    }

    public func properties(matching filter: PropertyFilter, limit: Int) async throws -> [SceneProperty] {
        var conditions: [String] = []
        var arguments: [(any DatabaseValueConvertible)?] = []
        for (column, value) in filter.exactMatches {
            conditions.append("\(column) = ?")
            arguments.append(value)
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        arguments.append(max(0, limit))
        let statementArguments = StatementArguments(arguments)
        return try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM property \(whereClause) ORDER BY key LIMIT ?", arguments: statementArguments).map(Self.property)
        }
    }

    public func applyPropertyValues(_ updates: [PropertyValuesUpdate]) async throws -> Int {
        try await applyEventUpdates(
            sql: "UPDATE property SET property_values = ?, seq = ? WHERE key = ? AND scene_key = ?",
            updates.map { ($0.propertyKey, $0.sceneKey, ColumnCoding.json(Array($0.values.prefix(SceneProperty.maximumValues))), $0.sequence) }
        )
    }

    public func memberKeys(ofScene sceneKey: String) async throws -> SceneMemberKeys {
        try await pool.read { db in
            SceneMemberKeys(
                objects: Set(try String.fetchAll(db, sql: "SELECT key FROM object WHERE scene_key = ?", arguments: [sceneKey])),
                properties: Set(try String.fetchAll(db, sql: "SELECT key FROM property WHERE scene_key = ?", arguments: [sceneKey]))
            )
        }
    }

    public func close() async throws {
        try pool.close()
    }

    /// Writes event updates (key, scene, value, sequence) in one transaction.
    /// They are never acknowledged, so their commits skip the fsync; the next acknowledged
    /// (synchronous = FULL) commit makes them durable with it.
    private func applyEventUpdates(sql: String, _ updates: [(key: String, sceneKey: String, value: any DatabaseValueConvertible & Sendable, sequence: UInt64)]) async throws -> Int {
        guard !updates.isEmpty else { return 0 }
        return try await pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            defer { try? db.execute(sql: "PRAGMA synchronous = FULL") }
            var changed = 0
            try db.inTransaction {
                let statement = try db.cachedStatement(sql: sql)
                for update in updates {
                    try statement.execute(arguments: [update.value, Int64(bitPattern: update.sequence), update.key, update.sceneKey])
                    changed += db.changesCount
                }
                return .commit
            }
            return changed
        }
    }

    /// Reads the row `key` of `table`, lets `change` edit it, and writes it back with `write`, in one
    /// transaction (SQLite's single writer makes it atomic). `write` returns the record as stored (it
    /// keeps its key whatever `change` does). Returns nil when there is no such row.
    private func readModifyWrite<Record: Sendable>(
        _ table: String,
        key: String,
        decode: @escaping @Sendable (Row) -> Record,
        change: @escaping @Sendable (inout Record) throws -> Void,
        write: @escaping @Sendable (Database, Record) throws -> Record
    ) async throws -> Record? {
        try await pool.write { db in
            guard var record = try Row.fetchOne(db, sql: "SELECT * FROM \(table) WHERE key = ?", arguments: [key]).map(decode) else { return nil }
            try change(&record)
            return try write(db, record)
        }
    }

    /// Deletes the row `key` of `table` and returns what it held.
    private func deleteReturning<Record: Sendable>(_ table: String, key: String, decode: @escaping @Sendable (Row) -> Record) async throws -> Record? {
        try await pool.write { db in
            let record = try Row.fetchOne(db, sql: "SELECT * FROM \(table) WHERE key = ?", arguments: [key]).map(decode)
            try db.execute(sql: "DELETE FROM \(table) WHERE key = ?", arguments: [key])
            return record
        }
    }

    /// Runs a write that inserts a primary key, turning SQLite's unique violation into ``StoreError``.
    private func write(duplicateKey key: String, _ body: @escaping @Sendable (Database) throws -> Void) async throws {
        do {
            try await pool.write(body)
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY {
            throw StoreError.duplicateKey(key)
        }
    }
}
