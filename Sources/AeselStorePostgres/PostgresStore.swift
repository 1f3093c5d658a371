public import AeselModel
public import AeselStore
import Foundation
public import Logging
import PostgresNIO

/// The shared store: PostgreSQL through postgres-nio's pooled `PostgresClient`.
///
/// The tables mirror ``SQLiteStore``'s columns and encodings: lists, vectors and actions are JSON text
/// (`JSONEncoder`), a transform is a `bytea` of 16 little-endian float64s. Every protocol method is one
/// transaction; `update…` methods lock the row (`SELECT … FOR UPDATE`), run the closure in Swift and write
/// every column back, so concurrent updates of one row are serialized.
///
/// The client's background work (`PostgresClient.run()`) runs in a task this store owns: ``init(url:logger:)``
/// starts it and ``close()`` cancels it and waits for the pool to shut down (dropping the store without
/// closing it cancels it too). Every call is async on postgres-nio's event loops: nothing blocks one.
public final class PostgresStore: AeselStore {
    /// A database URL that is not `postgres://user[:password]@host[:port]/database`.
    public struct InvalidURL: Error, CustomStringConvertible {
        public var url: String

        public init(url: String) {
            self.url = url
        }

        public var description: String {
            "not a PostgreSQL URL (expected postgres://user[:password]@host[:port]/database): \(redacted)"
        }

        /// The URL without its password, which must not reach a log.
        var redacted: String {
            guard var components = URLComponents(string: url), components.password != nil else {
                return url.contains("@") ? "(unparsable URL with credentials)" : url
            }
            components.password = "***"
            return components.string ?? "(unparsable URL with credentials)"
        }
    }

    private let client: PostgresClient
    private let runTask: Task<Void, Never>
    private let logger: Logger

    /// Connects to the database at `url` (`postgres://user[:password]@host[:port]/database`; TLS is not
    /// used) and creates the tables that are missing.
    /// A server that cannot be reached yet (it may be starting too) is retried for up to `patience`.
    public init(url: String, patience: Duration = .seconds(30), logger: Logger = Logger(label: "aesel.store.postgres")) async throws {
        let parts = try ConnectionURL(url)
        let client = PostgresClient(configuration: try Self.configuration(url: url), backgroundLogger: logger)
        self.client = client
        self.logger = logger
        runTask = await Self.startRunning(client)
        let deadline = ContinuousClock.now + patience
        while true {
            do {
                try await createSchema()
                return
            } catch let error as PSQLError where error.code != .server && ContinuousClock.now < deadline {
                // Not an answer from the server (refused, reset, timed out): try again.
                logger.debug("PostgreSQL not reachable yet", metadata: ["error": "\(String(reflecting: error))"])
                try? await Task.sleep(for: .milliseconds(250))
            } catch {
                runTask.cancel()
                await runTask.value
                throw StoreError.busy(path: "postgres://\(parts.host):\(parts.port)/\(parts.database ?? parts.user)", holders: "cannot open it (unreachable servers are retried for \(patience)): \(String(reflecting: error))")
            }
        }
    }

    deinit {
        runTask.cancel()
    }

    /// Cancels the client's run task and waits until its connections are closed. Safe to call twice.
    public func close() async throws {
        runTask.cancel()
        await runTask.value
    }

    /// Starts `client.run()` in a task, returning once the task is running it: a lease made before `run()`
    /// starts still works, but postgres-nio warns about it.
    private static func startRunning(_ client: PostgresClient) async -> Task<Void, Never> {
        let (started, start) = AsyncStream<Void>.makeStream()
        let task = Task {
            start.finish()
            await client.run()
        }
        for await _ in started {}
        return task
    }

    // MARK: Connection and schema

    /// The parts of a `postgres://user[:password]@host[:port]/database` URL.
    struct ConnectionURL: Equatable {
        var user: String
        var password: String?
        var host: String
        var port: Int
        /// nil when the URL names none: the server then uses the user's name.
        var database: String?

        init(user: String, password: String? = nil, host: String, port: Int = 5432, database: String? = nil) {
            self.user = user
            self.password = password
            self.host = host
            self.port = port
            self.database = database
        }

        init(_ url: String) throws {
            guard
                let components = URLComponents(string: url),
                components.scheme == "postgres" || components.scheme == "postgresql",
                let host = components.host, !host.isEmpty,
                let user = components.user, !user.isEmpty
            else { throw InvalidURL(url: url) }
            var database = components.path
            if database.hasPrefix("/") { database.removeFirst() }
            guard !database.contains("/") else { throw InvalidURL(url: url) }
            self.init(
                user: user,
                password: components.password,
                host: host,
                port: components.port ?? 5432,
                database: database.isEmpty ? nil : database
            )
        }
    }

    static func configuration(url: String) throws -> PostgresClient.Configuration {
        let parts = try ConnectionURL(url)
        return PostgresClient.Configuration(
            host: parts.host,
            port: parts.port,
            username: parts.user,
            password: parts.password,
            database: parts.database,
            tls: .disable
        )
    }

    private static let schema: [PostgresQuery] = [
        """
        CREATE TABLE IF NOT EXISTS scene (
            key TEXT COLLATE "C" PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            description TEXT NOT NULL DEFAULT '',
            thumbnail TEXT NOT NULL DEFAULT '',
            region TEXT NOT NULL DEFAULT '',
            latitude DOUBLE PRECISION,
            longitude DOUBLE PRECISION,
            distance DOUBLE PRECISION NOT NULL DEFAULT 0,
            active BOOLEAN NOT NULL DEFAULT TRUE,
            public BOOLEAN NOT NULL DEFAULT TRUE,
            assets TEXT NOT NULL DEFAULT '[]',
            tags TEXT NOT NULL DEFAULT '[]'
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS device (
            scene_key TEXT COLLATE "C" NOT NULL REFERENCES scene(key) ON DELETE CASCADE,
            key TEXT COLLATE "C" NOT NULL,
            hostname TEXT NOT NULL,
            port INTEGER NOT NULL,
            connection_string TEXT NOT NULL DEFAULT '',
            format TEXT NOT NULL DEFAULT 'json',
            translation TEXT NOT NULL DEFAULT '[0,0,0]',
            rotation TEXT NOT NULL DEFAULT '[0,0,0]',
            PRIMARY KEY (scene_key, key)
        )
        """,
        "CREATE INDEX IF NOT EXISTS device_key ON device(key)",
        """
        CREATE TABLE IF NOT EXISTS scene_link (
            from_scene TEXT COLLATE "C" NOT NULL REFERENCES scene(key) ON DELETE CASCADE,
            to_scene TEXT COLLATE "C" NOT NULL REFERENCES scene(key) ON DELETE CASCADE,
            translation TEXT NOT NULL,
            rotation TEXT NOT NULL,
            PRIMARY KEY (from_scene, to_scene)
        )
        """,
        "CREATE INDEX IF NOT EXISTS scene_link_to ON scene_link(to_scene)",
        """
        CREATE TABLE IF NOT EXISTS object (
            key TEXT COLLATE "C" PRIMARY KEY,
            scene_key TEXT COLLATE "C" NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            type TEXT NOT NULL DEFAULT '',
            subtype TEXT NOT NULL DEFAULT '',
            owner TEXT NOT NULL DEFAULT '',
            parent TEXT NOT NULL DEFAULT '',
            asset_sub_id TEXT NOT NULL DEFAULT '',
            transform BYTEA NOT NULL,
            assets TEXT NOT NULL DEFAULT '[]',
            actions TEXT NOT NULL DEFAULT '[]',
            seq BIGINT NOT NULL DEFAULT 0
        )
        """,
        "CREATE INDEX IF NOT EXISTS object_scene ON object(scene_key)",
        // Queries match names and parents exactly (reference 1.8); lock reloads look for owners.
        "CREATE INDEX IF NOT EXISTS object_name ON object(name)",
        "CREATE INDEX IF NOT EXISTS object_parent ON object(parent)",
        "CREATE INDEX IF NOT EXISTS object_owner ON object(owner) WHERE owner <> ''",
        """
        CREATE TABLE IF NOT EXISTS property (
            key TEXT COLLATE "C" PRIMARY KEY,
            scene_key TEXT COLLATE "C" NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            parent TEXT NOT NULL DEFAULT '',
            asset_sub_id TEXT NOT NULL DEFAULT '',
            property_values TEXT NOT NULL DEFAULT '[]',
            actions TEXT NOT NULL DEFAULT '[]',
            seq BIGINT NOT NULL DEFAULT 0
        )
        """,
        "CREATE INDEX IF NOT EXISTS property_scene ON property(scene_key)",
        "CREATE INDEX IF NOT EXISTS property_name ON property(name)",
        // Adrestia's scene-to-pair mapping. No foreign key: a scene may be assigned before it exists.
        """
        CREATE TABLE IF NOT EXISTS scene_pairs (
            scene_key TEXT COLLATE "C" PRIMARY KEY,
            pair_id TEXT COLLATE "C" NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS scene_pairs_pair ON scene_pairs(pair_id)",
    ]

    /// Creates the missing tables. The advisory lock serializes stores that start at the same time, which
    /// `CREATE … IF NOT EXISTS` alone does not (two creators can both pass the check).
    private func createSchema() async throws {
        try await transaction { connection in
            try await Self.execute("SELECT pg_advisory_xact_lock(\(Self.schemaLockID))", on: connection, logger: self.logger)
            for statement in Self.schema {
                try await Self.execute(statement, on: connection, logger: self.logger)
            }
        }
    }

    /// An arbitrary constant: "Aesel" in ASCII.
    private static let schemaLockID: Int64 = 0x41_65_73_65_6C

    /// Runs `body` in one transaction on one pooled connection: COMMIT when it returns, ROLLBACK and
    /// rethrow its error when it throws.
    private func transaction<Result: Sendable>(
        _ body: @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await client.withConnection { connection in
            try await Self.execute("BEGIN", on: connection, logger: self.logger)
            let result: Result
            do {
                result = try await body(connection)
            } catch {
                do {
                    try await Self.execute("ROLLBACK", on: connection, logger: self.logger)
                } catch let rollbackError {
                    // The connection's state is unknown: close it so the pool never hands it out again.
                    self.logger.warning("PostgreSQL ROLLBACK failed; closing the connection", metadata: ["error": "\(String(reflecting: rollbackError))"])
                    try? await connection.close()
                }
                throw error
            }
            try await Self.execute("COMMIT", on: connection, logger: self.logger)
            return result
        }
    }

    /// Runs a query on a leased connection (in a transaction) and collects its rows.
    @discardableResult
    private static func execute(_ query: PostgresQuery, on connection: PostgresConnection, logger: Logger) async throws -> [PostgresRow] {
        try await connection.query(query, logger: logger).collect()
    }

    /// Runs a query outside an explicit transaction (one statement is its own transaction) and
    /// collects its rows.
    private func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await client.query(query, logger: logger).collect()
    }

    /// Runs an INSERT, turning a unique violation into ``StoreError/duplicateKey(_:)``.
    private func insert(_ query: PostgresQuery, key: String) async throws {
        do {
            _ = try await rows(query)
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == Self.uniqueViolation {
            throw StoreError.duplicateKey(key)
        }
    }

    private static let uniqueViolation = "23505"

    // MARK: Scenes

    private static let sceneColumns = "key, name, description, thumbnail, region, latitude, longitude, distance, active, public, assets, tags"

    private static func scene(_ row: PostgresRow) throws -> Scene {
        let (key, name, description, thumbnail, region, latitude, longitude, distance, isActive, isPublic, assets, tags) =
            try row.decode((String, String, String, String, String, Double?, Double?, Double, Bool, Bool, String, String).self)
        return Scene(
            key: key,
            name: name,
            description: description,
            thumbnail: thumbnail,
            region: region,
            latitude: latitude,
            longitude: longitude,
            distance: distance,
            isActive: isActive,
            isPublic: isPublic,
            assets: ColumnCoding.decode(assets) ?? [],
            tags: ColumnCoding.decode(tags) ?? []
        )
    }

    public func createScene(_ scene: Scene) async throws {
        try await insert(
            """
            INSERT INTO scene (\(unescaped: Self.sceneColumns))
            VALUES (\(scene.key), \(scene.name), \(scene.description), \(scene.thumbnail), \(scene.region),
                    \(scene.latitude), \(scene.longitude), \(scene.distance), \(scene.isActive), \(scene.isPublic),
                    \(ColumnCoding.json(scene.assets)), \(ColumnCoding.json(scene.tags)))
            """,
            key: scene.key
        )
    }

    public func scene(key: String) async throws -> Scene? {
        try await rows("SELECT \(unescaped: Self.sceneColumns) FROM scene WHERE key = \(key)").first.map(Self.scene)
    }

    public func updateScene(key: String, _ change: @escaping @Sendable (inout Scene) throws -> Void) async throws -> Scene? {
        try await transaction { connection in
            let locked = try await Self.execute(
                "SELECT \(unescaped: Self.sceneColumns) FROM scene WHERE key = \(key) FOR UPDATE", on: connection, logger: self.logger
            )
            guard var scene = try locked.first.map(Self.scene) else { return nil }
            try change(&scene)
            scene.key = key
            try await Self.execute(
                """
                UPDATE scene SET name = \(scene.name), description = \(scene.description), thumbnail = \(scene.thumbnail),
                    region = \(scene.region), latitude = \(scene.latitude), longitude = \(scene.longitude),
                    distance = \(scene.distance), active = \(scene.isActive), public = \(scene.isPublic),
                    assets = \(ColumnCoding.json(scene.assets)), tags = \(ColumnCoding.json(scene.tags))
                WHERE key = \(key)
                """,
                on: connection,
                logger: self.logger
            )
            return scene
        }
    }

    public func deleteScene(key: String) async throws -> Bool {
        try await transaction { connection in
            // The foreign keys cascade too; deleting explicitly keeps this correct on tables made without them.
            try await Self.execute("DELETE FROM device WHERE scene_key = \(key)", on: connection, logger: self.logger)
            try await Self.execute(
                "DELETE FROM scene_link WHERE from_scene = \(key) OR to_scene = \(key)", on: connection, logger: self.logger
            )
            try await Self.execute("DELETE FROM scene_pairs WHERE scene_key = \(key)", on: connection, logger: self.logger)
            let deleted = try await Self.execute("DELETE FROM scene WHERE key = \(key) RETURNING key", on: connection, logger: self.logger)
            return !deleted.isEmpty
        }
    }

    public func scenes(name: String?, region: String?) async throws -> [Scene] {
        var query = PostgresQuery.StringInterpolation(literalCapacity: 160, interpolationCount: 2)
        query.appendLiteral("SELECT \(Self.sceneColumns) FROM scene WHERE TRUE")
        if let name {
            query.appendLiteral(" AND name = ")
            query.appendInterpolation(name)
        }
        if let region {
            query.appendLiteral(" AND region = ")
            query.appendInterpolation(region)
        }
        query.appendLiteral(" ORDER BY key")
        return try await rows(PostgresQuery(stringInterpolation: query)).map(Self.scene)
    }

    // MARK: Registration

    private static let deviceColumns = "key, hostname, port, connection_string, format, translation, rotation"

    private static func device(_ row: PostgresRow) throws -> Device {
        let (key, hostname, port, connectionString, format, translation, rotation) =
            try row.decode((String, String, Int, String, String, String, String).self)
        return Device(
            key: key,
            hostname: hostname,
            port: port,
            connectionString: connectionString,
            format: EventFormat(rawValue: format) ?? .json,
            transform: DeviceTransform(translation: ColumnCoding.vector(translation), rotation: ColumnCoding.vector(rotation))
        )
    }

    public func register(_ device: Device, inScene sceneKey: String) async throws {
        _ = try await rows(
            """
            INSERT INTO device (scene_key, \(unescaped: Self.deviceColumns))
            VALUES (\(sceneKey), \(device.key), \(device.hostname), \(device.port), \(device.connectionString),
                    \(device.format.rawValue), \(ColumnCoding.json(device.transform.translation)),
                    \(ColumnCoding.json(device.transform.rotation)))
            ON CONFLICT (scene_key, key) DO UPDATE SET
                hostname = EXCLUDED.hostname, port = EXCLUDED.port, connection_string = EXCLUDED.connection_string,
                format = EXCLUDED.format, translation = EXCLUDED.translation, rotation = EXCLUDED.rotation
            """
        )
    }

    public func deregister(deviceKey: String, fromScene sceneKey: String) async throws -> Bool {
        try await !rows("DELETE FROM device WHERE scene_key = \(sceneKey) AND key = \(deviceKey) RETURNING key").isEmpty
    }

    public func devices(inScene sceneKey: String) async throws -> [Device] {
        try await rows("SELECT \(unescaped: Self.deviceColumns) FROM device WHERE scene_key = \(sceneKey) ORDER BY key")
            .map(Self.device)
    }

    public func registrations(ofDevice deviceKey: String) async throws -> [(sceneKey: String, device: Device)] {
        try await rows(
            "SELECT \(unescaped: Self.deviceColumns), scene_key FROM device WHERE key = \(deviceKey) ORDER BY scene_key"
        ).map { row in
            // The device columns come first, so `device(_:)` decodes them and ignores the trailing scene key.
            (sceneKey: try row.makeRandomAccess()["scene_key"].decode(String.self), device: try Self.device(row))
        }
    }

    // MARK: Scene links

    public func setLink(_ link: SceneLink) async throws {
        try await transaction { connection in
            try await Self.execute(
                """
                DELETE FROM scene_link
                WHERE (from_scene = \(link.from) AND to_scene = \(link.to)) OR (from_scene = \(link.to) AND to_scene = \(link.from))
                """,
                on: connection,
                logger: self.logger
            )
            try await Self.execute(
                """
                INSERT INTO scene_link (from_scene, to_scene, translation, rotation)
                VALUES (\(link.from), \(link.to), \(ColumnCoding.json(link.transform.translation)),
                        \(ColumnCoding.json(link.transform.rotation)))
                """,
                on: connection,
                logger: self.logger
            )
        }
    }

    public func links(touching sceneKeys: [String]) async throws -> [SceneLink] {
        guard !sceneKeys.isEmpty else { return [] }
        return try await rows(
            """
            SELECT from_scene, to_scene, translation, rotation FROM scene_link
            WHERE from_scene = ANY(\(sceneKeys)) OR to_scene = ANY(\(sceneKeys))
            ORDER BY from_scene, to_scene
            """
        ).map { row in
            let (from, to, translation, rotation) = try row.decode((String, String, String, String).self)
            return SceneLink(
                from: from,
                to: to,
                transform: DeviceTransform(translation: ColumnCoding.vector(translation), rotation: ColumnCoding.vector(rotation))
            )
        }
    }

    // MARK: Scene-to-pair mapping

    public func pairOfScene(_ sceneKey: String) async throws -> String? {
        try await rows("SELECT pair_id FROM scene_pairs WHERE scene_key = \(sceneKey)").first?.decode(String.self)
    }

    public func assignScene(_ sceneKey: String, toPair pairID: String, ifCurrently expected: String?) async throws -> Bool {
        // One statement each: of concurrent inserts of one key only one inserts, and a concurrent update waits
        // for the first to commit, then re-checks `pair_id` on the row that one wrote.
        let changed: [PostgresRow]
        if let expected {
            changed = try await rows(
                """
                UPDATE scene_pairs SET pair_id = \(pairID) WHERE scene_key = \(sceneKey) AND pair_id = \(expected)
                RETURNING scene_key
                """
            )
        } else {
            changed = try await rows(
                """
                INSERT INTO scene_pairs (scene_key, pair_id) VALUES (\(sceneKey), \(pairID))
                ON CONFLICT (scene_key) DO NOTHING RETURNING scene_key
                """
            )
        }
        return !changed.isEmpty
    }

    public func scenes(onPair pairID: String) async throws -> [String] {
        try await rows("SELECT scene_key FROM scene_pairs WHERE pair_id = \(pairID) ORDER BY scene_key").map { try $0.decode(String.self) }
    }

    public func sceneCountsByPair() async throws -> [String: Int] {
        let counts = try await rows("SELECT pair_id, COUNT(*) FROM scene_pairs GROUP BY pair_id").map { row in
            let (pairID, count) = try row.decode((String, Int64).self)
            return (pairID, Int(count))
        }
        return Dictionary(uniqueKeysWithValues: counts)
    }

    // MARK: Objects

    private static let objectColumns =
        "key, scene_key, name, type, subtype, owner, parent, asset_sub_id, transform, assets, actions, seq"

    private static func object(_ row: PostgresRow) throws -> SceneObject {
        let (key, sceneKey, name, type, subtype, owner, parent, assetSubID, transform, assets, actions, sequence) =
            try row.decode((String, String, String, String, String, String, String, String, Data, String, String, Int64).self)
        return SceneObject(
            key: key,
            sceneKey: sceneKey,
            name: name,
            type: type,
            subtype: subtype,
            owner: owner,
            parent: parent,
            assetSubID: assetSubID,
            transform: ColumnCoding.transform(transform),
            assets: ColumnCoding.decode(assets) ?? [],
            actions: ColumnCoding.decode(actions) ?? [],
            sequence: UInt64(bitPattern: sequence)
        )
    }

    public func createObject(_ object: SceneObject) async throws {
        try await insert(
            """
            INSERT INTO object (\(unescaped: Self.objectColumns))
            VALUES (\(object.key), \(object.sceneKey), \(object.name), \(object.type), \(object.subtype), \(object.owner),
                    \(object.parent), \(object.assetSubID), \(ColumnCoding.blob(object.transform)),
                    \(ColumnCoding.json(object.assets)), \(ColumnCoding.json(object.actions)),
                    \(Int64(bitPattern: object.sequence)))
            """,
            key: object.key
        )
    }

    public func object(key: String) async throws -> SceneObject? {
        try await rows("SELECT \(unescaped: Self.objectColumns) FROM object WHERE key = \(key)").first.map(Self.object)
    }

    public func updateObject(key: String, _ change: @escaping @Sendable (inout SceneObject) throws -> Void) async throws -> SceneObject? {
        try await transaction { connection in
            let locked = try await Self.execute(
                "SELECT \(unescaped: Self.objectColumns) FROM object WHERE key = \(key) FOR UPDATE", on: connection, logger: self.logger
            )
            guard var object = try locked.first.map(Self.object) else { return nil }
            try change(&object)
            object.key = key
            try await Self.execute(
                """
                UPDATE object SET scene_key = \(object.sceneKey), name = \(object.name), type = \(object.type),
                    subtype = \(object.subtype), owner = \(object.owner), parent = \(object.parent),
                    asset_sub_id = \(object.assetSubID), transform = \(ColumnCoding.blob(object.transform)),
                    assets = \(ColumnCoding.json(object.assets)), actions = \(ColumnCoding.json(object.actions)),
                    seq = \(Int64(bitPattern: object.sequence))
                WHERE key = \(key)
                """,
                on: connection,
                logger: self.logger
            )
            return object
        }
    }

    public func deleteObject(key: String) async throws -> SceneObject? {
        try await rows("DELETE FROM object WHERE key = \(key) RETURNING \(unescaped: Self.objectColumns)").first.map(Self.object)
    }

    public func objects(matching filter: ObjectFilter, limit: Int) async throws -> [SceneObject] {
        var query = PostgresQuery.StringInterpolation(literalCapacity: 256, interpolationCount: 9)
        query.appendLiteral("SELECT \(Self.objectColumns) FROM object WHERE TRUE")
        for (column, value) in filter.exactMatches {
            query.appendLiteral(" AND \(column) = ")
            query.appendInterpolation(value)
        }
        if filter.lockedOnly {
            query.appendLiteral(" AND owner <> ''")
        }
        if filter.assets.count == 1 {
            // Has this asset: the JSON array contains it.
            query.appendLiteral(" AND assets::jsonb @> jsonb_build_array(")
            query.appendInterpolation(filter.assets[0])
            query.appendLiteral("::text)")
        } else if filter.assets.count > 1 {
            // Has exactly these assets, in this order: JSON array equality is ordered.
            query.appendLiteral(" AND assets::jsonb = ")
            query.appendInterpolation(ColumnCoding.json(filter.assets))
            query.appendLiteral("::jsonb")
        }
        query.appendLiteral(" ORDER BY key LIMIT ")
        query.appendInterpolation(max(0, limit))
        return try await rows(PostgresQuery(stringInterpolation: query)).map(Self.object)
    }

    public func applyTransforms(_ updates: [TransformUpdate]) async throws -> Int {
        try await applyEventUpdates(
            try updates.map { update in
                try """
                    UPDATE object SET transform = \(ColumnCoding.blob(update.transform)), seq = \(Int64(bitPattern: update.sequence))
                    WHERE key = \(update.objectKey) AND scene_key = \(update.sceneKey)
                    RETURNING key
                    """
            }
        )
    }

    // MARK: Properties

    private static let propertyColumns = "key, scene_key, name, parent, asset_sub_id, property_values, actions, seq"

    private static func property(_ row: PostgresRow) throws -> SceneProperty {
        let (key, sceneKey, name, parent, assetSubID, values, actions, sequence) =
            try row.decode((String, String, String, String, String, String, String, Int64).self)
        return SceneProperty(
            key: key,
            sceneKey: sceneKey,
            name: name,
            parent: parent,
            assetSubID: assetSubID,
            values: ColumnCoding.decode(values) ?? [],
            actions: ColumnCoding.decode(actions) ?? [],
            sequence: UInt64(bitPattern: sequence)
        )
    }

    public func createProperty(_ property: SceneProperty) async throws {
        try await insert(
            """
            INSERT INTO property (\(unescaped: Self.propertyColumns))
            VALUES (\(property.key), \(property.sceneKey), \(property.name), \(property.parent), \(property.assetSubID),
                    \(ColumnCoding.json(Array(property.values.prefix(SceneProperty.maximumValues)))),
                    \(ColumnCoding.json(property.actions)), \(Int64(bitPattern: property.sequence)))
            """,
            key: property.key
        )
    }

    public func property(key: String) async throws -> SceneProperty? {
        try await rows("SELECT \(unescaped: Self.propertyColumns) FROM property WHERE key = \(key)").first.map(Self.property)
    }

    public func updateProperty(key: String, _ change: @escaping @Sendable (inout SceneProperty) throws -> Void) async throws -> SceneProperty? {
        try await transaction { connection in
            let locked = try await Self.execute(
                "SELECT \(unescaped: Self.propertyColumns) FROM property WHERE key = \(key) FOR UPDATE", on: connection, logger: self.logger
            )
            guard var property = try locked.first.map(Self.property) else { return nil }
            try change(&property)
            property.key = key
            property.values = Array(property.values.prefix(SceneProperty.maximumValues))
            try await Self.execute(
                """
                UPDATE property SET scene_key = \(property.sceneKey), name = \(property.name), parent = \(property.parent),
                    asset_sub_id = \(property.assetSubID), property_values = \(ColumnCoding.json(property.values)),
                    actions = \(ColumnCoding.json(property.actions)), seq = \(Int64(bitPattern: property.sequence))
                WHERE key = \(key)
                """,
                on: connection,
                logger: self.logger
            )
            return property
        }
    }

    public func deleteProperty(key: String) async throws -> SceneProperty? {
        try await rows("DELETE FROM property WHERE key = \(key) RETURNING \(unescaped: Self.propertyColumns)").first
            .map(Self.property)
    }

    public func properties(matching filter: PropertyFilter, limit: Int) async throws -> [SceneProperty] {
        var query = PostgresQuery.StringInterpolation(literalCapacity: 192, interpolationCount: 5)
        query.appendLiteral("SELECT \(Self.propertyColumns) FROM property WHERE TRUE")
        for (column, value) in filter.exactMatches {
            query.appendLiteral(" AND \(column) = ")
            query.appendInterpolation(value)
        }
        query.appendLiteral(" ORDER BY key LIMIT ")
        query.appendInterpolation(max(0, limit))
        return try await rows(PostgresQuery(stringInterpolation: query)).map(Self.property)
    }

    public func applyPropertyValues(_ updates: [PropertyValuesUpdate]) async throws -> Int {
        try await applyEventUpdates(
            updates.map { update in
                let values = ColumnCoding.json(Array(update.values.prefix(SceneProperty.maximumValues)))
                return """
                    UPDATE property SET property_values = \(values), seq = \(Int64(bitPattern: update.sequence))
                    WHERE key = \(update.propertyKey) AND scene_key = \(update.sceneKey)
                    RETURNING key
                    """
            }
        )
    }

    public func memberKeys(ofScene sceneKey: String) async throws -> SceneMemberKeys {
        var members = SceneMemberKeys()
        for try await key in try await client.query("SELECT key FROM object WHERE scene_key = \(sceneKey)", logger: logger).decode(String.self) {
            members.objects.insert(key)
        }
        for try await key in try await client.query("SELECT key FROM property WHERE scene_key = \(sceneKey)", logger: logger).decode(String.self) {
            members.properties.insert(key)
        }
        return members
    }

    /// Runs event updates (each `… RETURNING key`, so one that matches no row returns none) in one transaction and
    /// counts the rows they changed. Events are never acknowledged, so, like SQLiteStore's, their commit
    /// does not wait for the WAL flush; the next acknowledged commit makes them durable with it.
    private func applyEventUpdates(_ statements: [PostgresQuery]) async throws -> Int {
        guard !statements.isEmpty else { return 0 }
        return try await transaction { connection in
            try await Self.execute("SET LOCAL synchronous_commit = off", on: connection, logger: self.logger)
            var changed = 0
            for statement in statements {
                changed += try await Self.execute(statement, on: connection, logger: self.logger).count
            }
            return changed
        }
    }
}

// MARK: Administration

extension PostgresStore {
    /// Creates the database `name` through the server at `adminURL` (usually its `postgres` database). The
    /// contract tests give each test a database of its own this way.
    package static func createDatabase(_ name: String, adminURL: String, logger: Logger = Logger(label: "aesel.store.postgres")) async throws {
        try await administer("CREATE DATABASE \(identifier(name))", adminURL: adminURL, logger: logger)
    }

    /// Drops the database `name`, closing whatever connections it still has.
    package static func dropDatabase(_ name: String, adminURL: String, logger: Logger = Logger(label: "aesel.store.postgres")) async throws {
        try await administer("DROP DATABASE IF EXISTS \(identifier(name)) WITH (FORCE)", adminURL: adminURL, logger: logger)
    }

    /// Database names are identifiers, which cannot be bound: quote them instead.
    private static func identifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Runs one statement outside a transaction (CREATE and DROP DATABASE refuse to run in one) on a
    /// short-lived client.
    private static func administer(_ sql: String, adminURL: String, logger: Logger) async throws {
        let client = PostgresClient(configuration: try configuration(url: adminURL), backgroundLogger: logger)
        let runTask = await startRunning(client)
        do {
            _ = try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger).collect()
        } catch {
            runTask.cancel()
            await runTask.value
            throw error
        }
        runTask.cancel()
        await runTask.value
    }
}
