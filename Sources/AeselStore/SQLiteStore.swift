public import AeselModel
import Foundation
import GRDB

/// The embedded store: one SQLite file, in WAL mode with full synchronous commits.
///
/// GRDB runs every statement on its own serial writer queue (and a reader pool), so callers await
/// without blocking an event loop.
public final class SQLiteStore: AeselStore {
    private let pool: DatabasePool

    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        configuration.busyMode = .timeout(5)
        pool = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(pool)
    }

    /// Opens `aesel.sqlite` in the data folder, creating the folder.
    public convenience init(dataFolder: String) throws {
        try FileManager.default.createDirectory(atPath: dataFolder, withIntermediateDirectories: true)
        try self.init(path: (dataFolder as NSString).appendingPathComponent("aesel.sqlite"))
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
        return migrator
    }

    public func createScene(_ scene: Scene) async throws {
        try await write(duplicateKey: scene.key) { db in
            try db.execute(
                sql: """
                    INSERT INTO scene (key, name, description, thumbnail, region, latitude, longitude, distance,
                                       active, public, assets, tags)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    scene.key, scene.name, scene.description, scene.thumbnail, scene.region, scene.latitude,
                    scene.longitude, scene.distance, scene.isActive, scene.isPublic, ColumnCoding.json(scene.assets),
                    ColumnCoding.json(scene.tags),
                ]
            )
        }
    }

    public func scene(key: String) async throws -> Scene? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM scene WHERE key = ?", arguments: [key]).map { row in
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
                    assets: ColumnCoding.strings(row["assets"]),
                    tags: ColumnCoding.strings(row["tags"])
                )
            }
        }
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
            try Row.fetchAll(db, sql: "SELECT * FROM device WHERE scene_key = ? ORDER BY key", arguments: [sceneKey])
                .map { row in
                    Device(
                        key: row["key"],
                        hostname: row["hostname"],
                        port: row["port"],
                        connectionString: row["connection_string"],
                        format: EventFormat(rawValue: row["format"]) ?? .json,
                        transform: DeviceTransform(
                            translation: ColumnCoding.vector(row["translation"]),
                            rotation: ColumnCoding.vector(row["rotation"])
                        )
                    )
                }
        }
    }

    public func createObject(_ object: SceneObject) async throws {
        try await write(duplicateKey: object.key) { db in
            try db.execute(
                sql: """
                    INSERT INTO object (key, scene_key, name, type, subtype, owner, parent, asset_sub_id, transform,
                                        assets, seq)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    object.key, object.sceneKey, object.name, object.type, object.subtype, object.owner, object.parent,
                    object.assetSubID, ColumnCoding.blob(object.transform), ColumnCoding.json(object.assets),
                    Int64(bitPattern: object.sequence),
                ]
            )
        }
    }

    public func object(key: String) async throws -> SceneObject? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM object WHERE key = ?", arguments: [key]).map { row in
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
                    assets: ColumnCoding.strings(row["assets"]),
                    sequence: UInt64(bitPattern: row["seq"] as Int64)
                )
            }
        }
    }

    public func applyTransforms(_ updates: [TransformUpdate]) async throws -> Int {
        guard !updates.isEmpty else { return 0 }
        return try await pool.writeWithoutTransaction { db in
            // Event transforms are never acknowledged, so their commits skip the fsync; the next
            // acknowledged (synchronous = FULL) commit makes them durable with it.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            defer { try? db.execute(sql: "PRAGMA synchronous = FULL") }
            var changed = 0
            try db.inTransaction {
                let statement = try db.cachedStatement(
                    sql: "UPDATE object SET transform = ?, seq = max(seq, ?) WHERE key = ? AND (? = 0 OR seq < ?)"
                )
                for update in updates {
                    let sequence = Int64(bitPattern: update.sequence)
                    try statement.execute(arguments: [ColumnCoding.blob(update.transform), sequence, update.objectKey, sequence, sequence])
                    changed += db.changesCount
                }
                return .commit
            }
            return changed
        }
    }

    public func close() async throws {
        try pool.close()
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

/// Lists and vectors are stored as JSON text, readable with the sqlite3 shell; transforms as blobs.
enum ColumnCoding {
    static func json<T: Encodable>(_ value: T) -> String {
        String(decoding: (try? JSONEncoder().encode(value)) ?? Data("[]".utf8), as: UTF8.self)
    }

    static func strings(_ text: String) -> [String] {
        (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
    }

    /// A transform is 16 little-endian float64s: cheap to write on every write-behind flush.
    static func blob(_ transform: Transform) -> Data {
        var data = Data(capacity: 128)
        for index in 0..<16 {
            withUnsafeBytes(of: transform.elements[index].bitPattern.littleEndian) { data.append(contentsOf: $0) }
        }
        return data
    }

    static func transform(_ data: Data) -> Transform {
        guard data.count == 128 else { return .identity }
        var elements = SIMD16<Double>()
        data.withUnsafeBytes { bytes in
            for index in 0..<16 {
                elements[index] = Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)))
            }
        }
        return Transform(elements: elements)
    }

    static func vector(_ text: String) -> SIMD3<Double> {
        (try? JSONDecoder().decode(SIMD3<Double>.self, from: Data(text.utf8))) ?? .zero
    }
}
