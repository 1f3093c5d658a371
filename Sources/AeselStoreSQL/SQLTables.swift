package import AeselModel
package import AeselStore
internal import Foundation

/// How one entity is stored, for both SQL back ends: its table, its columns (listed once, in the order
/// of ``values(_:)``) and its row decoder.
package protocol SQLTable: Sendable {
    associatedtype Record: Sendable
    static var name: String { get }
    static var columns: [String] { get }
    static func values(_ record: Record) -> [SQLValue]
    static func decode(_ row: RowReader<some SQLRow>) throws -> Record
}

extension SQLTable {
    static var columnList: String { columns.joined(separator: ", ") }

    /// `SELECT` of every column; add the `WHERE`.
    package static var select: SQLStatement { "SELECT \(sql: columnList) FROM \(sql: name)" }

    package static func insert(_ record: Record) -> SQLStatement {
        let list = SQLStatement.joined(values(record).map { "\($0)" as SQLStatement }, separator: ", ")
        return "INSERT INTO \(sql: name) (\(sql: columnList)) VALUES (\(list))"
    }
}

/// A table whose rows a `key` column names (its first column).
package protocol KeyedSQLTable: SQLTable where Record: StoredRecord {}

extension KeyedSQLTable {
    package static func select(key: String) -> SQLStatement {
        "\(select) WHERE key = \(key)"
    }

    /// Writes every column but the key to the row `key`.
    package static func update(_ record: Record, key: String) -> SQLStatement {
        let assignments = zip(columns, values(record)).dropFirst().map { column, value in "\(sql: column) = \(value)" as SQLStatement }
        return "UPDATE \(sql: name) SET \(SQLStatement.joined(assignments, separator: ", ")) WHERE key = \(key)"
    }

    /// Deletes the row `key`, returning what it held.
    package static func delete(key: String) -> SQLStatement {
        "DELETE FROM \(sql: name) WHERE key = \(key) RETURNING \(sql: columnList)"
    }

    /// `WHERE` each column equals its value (all rows when there are none), in key order, at most `limit`.
    static func matching(_ exactMatches: [(column: String, value: String)], and more: [SQLStatement] = [], limit: Int) -> SQLStatement {
        let conditions = exactMatches.map { "\(sql: $0.column) = \($0.value)" as SQLStatement } + more
        let filter: SQLStatement = conditions.isEmpty ? "" : " WHERE \(SQLStatement.joined(conditions, separator: " AND "))"
        return "\(select)\(filter) ORDER BY key LIMIT \(Int64(max(0, limit)))"
    }
}

/// Every table, for the per-table counters.
package enum SQLTables {
    package static let names = [SceneTable.name, DeviceTable.name, SceneLinkTable.name, ScenePairTable.name, ObjectTable.name, PropertyTable.name]
}

// MARK: Scenes

package enum SceneTable: KeyedSQLTable {
    package static let name = "scene"
    package static let columns = ["key", "name", "description", "thumbnail", "region", "latitude", "longitude", "distance", "active", "public", "assets", "tags"]

    package static func values(_ scene: Scene) -> [SQLValue] {
        [
            .text(scene.key), .text(scene.name), .text(scene.description), .text(scene.thumbnail), .text(scene.region),
            SQLValue(scene.latitude), SQLValue(scene.longitude), .real(scene.distance), .bool(scene.isActive), .bool(scene.isPublic),
            SQLColumns.json(scene.assets), SQLColumns.json(scene.tags),
        ]
    }

    package static func decode(_ row: RowReader<some SQLRow>) throws -> Scene {
        let row = row.identified(by: try row.string("key"))
        return Scene(
            key: try row.string("key"),
            name: try row.string("name"),
            description: try row.string("description"),
            thumbnail: try row.string("thumbnail"),
            region: try row.string("region"),
            latitude: try row.optionalDouble("latitude"),
            longitude: try row.optionalDouble("longitude"),
            distance: try row.double("distance"),
            isActive: try row.bool("active"),
            isPublic: try row.bool("public"),
            assets: try row.json("assets"),
            tags: try row.json("tags")
        )
    }

    /// Scenes whose name and region equal the given ones (nil matches any), in key order.
    package static func matching(name: String?, region: String?) -> SQLStatement {
        let matches = [("name", name), ("region", region)].compactMap { column, value in value.map { (column: column, value: $0) } }
        return matching(matches, limit: Int(Int32.max))
    }

    /// Deletes the scene with its registrations, links and pair assignment; the last returns the scene's
    /// key if it existed. (The foreign keys cascade too; deleting explicitly holds on tables made without them.)
    package static func delete(key: String) -> [SQLStatement] {
        [
            "DELETE FROM device WHERE scene_key = \(key)",
            "DELETE FROM scene_link WHERE from_scene = \(key) OR to_scene = \(key)",
            "DELETE FROM scene_pairs WHERE scene_key = \(key)",
            "DELETE FROM scene WHERE key = \(key) RETURNING key",
        ]
    }
}

// MARK: Registrations

/// A device as registered in one scene: a row of the `device` table.
package typealias Registration = (sceneKey: String, device: Device)

package enum DeviceTable: SQLTable {
    package static let name = "device"
    package static let columns = [
        "scene_key", "key", "hostname", "port", "connection_string", "format", "translation", "rotation", "session_key_id", "session_key",
    ]

    package static func values(_ registration: Registration) -> [SQLValue] {
        let device = registration.device
        return [
            .text(registration.sceneKey), .text(device.key), .text(device.hostname), .integer(Int64(device.port)),
            .text(device.connectionString), .text(device.format.rawValue),
            SQLColumns.json(device.transform.translation), SQLColumns.json(device.transform.rotation),
            device.sessionKey.map { .integer(Int64($0.id)) } ?? .null, device.sessionKey.map { .blob(Data($0.secret)) } ?? .null,
        ]
    }

    package static func decode(_ row: RowReader<some SQLRow>) throws -> Registration {
        let (sceneKey, key) = (try row.string("scene_key"), try row.string("key"))
        let row = row.identified(by: "\(key) in scene \(sceneKey)")
        let port = try row.int64("port")
        let device = Device(
            key: key,
            hostname: try row.string("hostname"),
            port: Int(port),
            connectionString: try row.string("connection_string"),
            format: try row.enumeration("format"),
            transform: DeviceTransform(translation: try row.vector("translation"), rotation: try row.vector("rotation")),
            sessionKey: try row.sessionKey(id: "session_key_id", secret: "session_key")
        )
        return (sceneKey, device)
    }

    /// Adds the registration, or replaces the one of the same device in the same scene.
    package static func upsert(_ device: Device, inScene sceneKey: String) -> SQLStatement {
        let replaced = columns.dropFirst(2).map { "\($0) = excluded.\($0)" }.joined(separator: ", ")
        return "\(insert((sceneKey, device))) ON CONFLICT (scene_key, key) DO UPDATE SET \(sql: replaced)"
    }

    package static func delete(deviceKey: String, sceneKey: String) -> SQLStatement {
        "DELETE FROM device WHERE scene_key = \(sceneKey) AND key = \(deviceKey) RETURNING key"
    }

    package static func inScene(_ sceneKey: String) -> SQLStatement {
        "\(select) WHERE scene_key = \(sceneKey) ORDER BY key"
    }

    package static func ofDevice(_ deviceKey: String) -> SQLStatement {
        "\(select) WHERE key = \(deviceKey) ORDER BY scene_key"
    }

    package static func withSessionKey(id: UInt64) -> SQLStatement {
        "\(select) WHERE session_key_id = \(Int64(id))"
    }
}

// MARK: Scene links

package enum SceneLinkTable: SQLTable {
    package static let name = "scene_link"
    package static let columns = ["from_scene", "to_scene", "translation", "rotation"]

    package static func values(_ link: SceneLink) -> [SQLValue] {
        [.text(link.from), .text(link.to), SQLColumns.json(link.transform.translation), SQLColumns.json(link.transform.rotation)]
    }

    package static func decode(_ row: RowReader<some SQLRow>) throws -> SceneLink {
        let (from, to) = (try row.string("from_scene"), try row.string("to_scene"))
        let row = row.identified(by: "\(from) to \(to)")
        return SceneLink(from: from, to: to, transform: DeviceTransform(translation: try row.vector("translation"), rotation: try row.vector("rotation")))
    }

    /// Replaces the pair's link, whichever its direction.
    package static func set(_ link: SceneLink) -> [SQLStatement] {
        [
            """
            DELETE FROM scene_link
            WHERE (from_scene = \(link.from) AND to_scene = \(link.to)) OR (from_scene = \(link.to) AND to_scene = \(link.from))
            """,
            insert(link),
        ]
    }

    package static func touching(_ sceneKeys: [String]) -> SQLStatement {
        let keys = SQLStatement.joined(sceneKeys.map { "\($0)" as SQLStatement }, separator: ", ")
        return "\(select) WHERE from_scene IN (\(keys)) OR to_scene IN (\(keys)) ORDER BY from_scene, to_scene"
    }
}

// MARK: Scene-to-pair mapping

/// Adrestia's mapping: two strings per row, read with ``RowReader`` like every other column.
package enum ScenePairTable {
    package static let name = "scene_pairs"

    package static func pair(ofScene sceneKey: String) -> SQLStatement {
        "SELECT pair_id FROM scene_pairs WHERE scene_key = \(sceneKey)"
    }

    /// Assigns the scene if its pair is `expected` (nil: none yet); returns its key when it did. One
    /// statement: of concurrent inserts of one key only one inserts, and a concurrent update waits for the
    /// first to commit, then checks `pair_id` again on what that one wrote.
    package static func assign(_ sceneKey: String, toPair pairID: String, ifCurrently expected: String?) -> SQLStatement {
        guard let expected else {
            return """
                INSERT INTO scene_pairs (scene_key, pair_id) VALUES (\(sceneKey), \(pairID))
                ON CONFLICT (scene_key) DO NOTHING RETURNING scene_key
                """
        }
        return "UPDATE scene_pairs SET pair_id = \(pairID) WHERE scene_key = \(sceneKey) AND pair_id = \(expected) RETURNING scene_key"
    }

    package static func scenes(onPair pairID: String) -> SQLStatement {
        "SELECT scene_key FROM scene_pairs WHERE pair_id = \(pairID) ORDER BY scene_key"
    }

    /// `pair_id` and `scenes`.
    package static let counts: SQLStatement = "SELECT pair_id, COUNT(*) AS scenes FROM scene_pairs GROUP BY pair_id"
}

// MARK: Objects

package enum ObjectTable: KeyedSQLTable {
    package static let name = "object"
    package static let columns = ["key", "scene_key", "name", "type", "subtype", "owner", "parent", "asset_sub_id", "transform", "assets", "actions", "seq"]

    package static func values(_ object: SceneObject) -> [SQLValue] {
        [
            .text(object.key), .text(object.sceneKey), .text(object.name), .text(object.type), .text(object.subtype),
            .text(object.owner), .text(object.parent), .text(object.assetSubID), .blob(SQLColumns.blob(object.transform)),
            SQLColumns.json(object.assets), SQLColumns.json(object.actions), .integer(Int64(bitPattern: object.sequence)),
        ]
    }

    package static func decode(_ row: RowReader<some SQLRow>) throws -> SceneObject {
        let row = row.identified(by: try row.string("key"))
        return SceneObject(
            key: try row.string("key"),
            sceneKey: try row.string("scene_key"),
            name: try row.string("name"),
            type: try row.string("type"),
            subtype: try row.string("subtype"),
            owner: try row.string("owner"),
            parent: try row.string("parent"),
            assetSubID: try row.string("asset_sub_id"),
            transform: try row.transform("transform"),
            assets: try row.json("assets"),
            actions: try row.json("actions"),
            sequence: UInt64(bitPattern: try row.int64("seq"))
        )
    }

    /// Objects matching `filter`; the asset conditions are the dialect's (JSON functions differ).
    package static func matching(_ filter: ObjectFilter, limit: Int, dialect: SQLDialect) -> SQLStatement {
        var more: [SQLStatement] = []
        if filter.assets.count == 1 {
            // Has this asset: the JSON array contains it.
            more.append(
                dialect == .sqlite
                    ? "EXISTS (SELECT 1 FROM json_each(object.assets) WHERE json_each.value = \(filter.assets[0]))"
                    : "assets::jsonb @> jsonb_build_array(\(filter.assets[0])::text)"
            )
        } else if filter.assets.count > 1 {
            // Has exactly these assets, in this order: the same JSON (array equality is ordered).
            let assets = SQLColumns.json(filter.assets)
            more.append(dialect == .sqlite ? "assets = \(assets)" : "assets::jsonb = \(assets)::jsonb")
        }
        return matching(filter.exactMatches, and: more, limit: limit)
    }

    package static func keys(inScene sceneKey: String) -> SQLStatement {
        "SELECT key FROM object WHERE scene_key = \(sceneKey)"
    }

    /// `key`, `scene_key` and `owner` of every locked object: a scan of the `object_owner` partial index.
    package static let locks: SQLStatement = "SELECT key, scene_key, owner FROM object WHERE owner <> '' ORDER BY key"

    package static func lock(_ row: RowReader<some SQLRow>) throws -> ObjectLock {
        ObjectLock(objectKey: try row.string("key"), sceneKey: try row.string("scene_key"), owner: try row.string("owner"))
    }
}

// MARK: Properties

package enum PropertyTable: KeyedSQLTable {
    package static let name = "property"
    package static let columns = ["key", "scene_key", "name", "parent", "asset_sub_id", "property_values", "actions", "seq"]

    package static func values(_ property: SceneProperty) -> [SQLValue] {
        [
            .text(property.key), .text(property.sceneKey), .text(property.name), .text(property.parent), .text(property.assetSubID),
            SQLColumns.json(SceneProperty.storedValues(property.values)), SQLColumns.json(property.actions),
            .integer(Int64(bitPattern: property.sequence)),
        ]
    }

    package static func decode(_ row: RowReader<some SQLRow>) throws -> SceneProperty {
        let row = row.identified(by: try row.string("key"))
        return SceneProperty(
            key: try row.string("key"),
            sceneKey: try row.string("scene_key"),
            name: try row.string("name"),
            parent: try row.string("parent"),
            assetSubID: try row.string("asset_sub_id"),
            values: try row.json("property_values"),
            actions: try row.json("actions"),
            sequence: UInt64(bitPattern: try row.int64("seq"))
        )
    }

    package static func matching(_ filter: PropertyFilter, limit: Int) -> SQLStatement {
        matching(filter.exactMatches, limit: limit)
    }

    package static func keys(inScene sceneKey: String) -> SQLStatement {
        "SELECT key FROM property WHERE scene_key = \(sceneKey)"
    }
}

// MARK: Event writes

/// What a batch of event updates writes, column by column (as PostgreSQL binds it, one array each): a value
/// and `seq` per row, each only where the row's key and scene match. The last update of a key wins, as
/// applying them in order would leave it.
package struct EventWrites<Value: Sendable>: Sendable {
    package let table: String
    package let valueColumn: String
    package let keys: [String]
    package let sceneKeys: [String]
    package let values: [Value]
    package let sequences: [Int64]
    private let bound: @Sendable (Value) -> SQLValue

    private init<Update: EventUpdate>(
        table: String, valueColumn: String, _ updates: [Update], value: (Update) -> Value, bound: @escaping @Sendable (Value) -> SQLValue
    ) {
        let updates = lastPerKey(updates)
        self.table = table
        self.valueColumn = valueColumn
        keys = updates.map(\.key)
        sceneKeys = updates.map(\.sceneKey)
        values = updates.map(value)
        sequences = updates.map { Int64(bitPattern: $0.sequence) }
        self.bound = bound
    }

    /// The update of row `index`: what SQLite runs once per row, as one prepared statement.
    package func update(_ index: Int) -> SQLStatement {
        """
        UPDATE \(sql: table) SET \(sql: valueColumn) = \(bound(values[index])), seq = \(sequences[index]) \
        WHERE key = \(keys[index]) AND scene_key = \(sceneKeys[index])
        """
    }
}

extension EventWrites<Data> {
    package static func transforms(_ updates: [TransformUpdate]) -> EventWrites {
        EventWrites(table: ObjectTable.name, valueColumn: "transform", updates, value: { SQLColumns.blob($0.transform) }, bound: SQLValue.blob)
    }
}

extension EventWrites<String> {
    package static func propertyValues(_ updates: [PropertyValuesUpdate]) -> EventWrites {
        EventWrites(
            table: PropertyTable.name, valueColumn: "property_values", updates,
            value: { SQLColumns.jsonText(SceneProperty.storedValues($0.values)) }, bound: SQLValue.text
        )
    }
}
