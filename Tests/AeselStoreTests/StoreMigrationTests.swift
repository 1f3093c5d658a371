import AeselModel
import AeselStore
import AeselStoreSQL
import AeselStoreSQLite
import AeselTesting
import Foundation
import GRDB
import Testing

/// Databases made before the one versioned migration list still open, and are brought forward.
@Suite("Store migrations", .serialized)
struct StoreMigrationTests {
    static let versions = SQLMigrations.all.map(\.version)

    /// Every table is there and works: a little of each.
    static func checkEveryTable(_ store: any AeselStore) async throws {
        try await store.createScene(Scene(key: "new"))
        try await store.register(Device(key: "d", hostname: "127.0.0.1", port: 4000), inScene: "new")
        try await store.setLink(SceneLink(from: "new", to: "old", transform: .identity))
        try await store.createObject(SceneObject(key: "o", sceneKey: "new", actions: [ObjectAction(name: "spin")]))
        try await store.createProperty(SceneProperty(key: "p", sceneKey: "new", values: [1]))
        #expect(try await store.assignScene("new", toPair: "A", ifCurrently: nil))
        #expect(try await store.links(touching: ["old"]).count == 1)
        #expect(try await store.memberKeys(ofScene: "new") == SceneMemberKeys(objects: ["o"], properties: ["p"]))
    }

    @Test("A fresh database of each SQL back end records every version", arguments: StoreKind.durable)
    func freshDatabase(kind: StoreKind) async throws {
        try await withTestStore(kind) { location in
            let store = try await location.open()
            try await store.close()
            let query = kind == .sqlite
                ? "SELECT CAST(substr(identifier, 2) AS INTEGER) FROM grdb_migrations ORDER BY 1"
                : "SELECT version FROM aesel_migrations ORDER BY version"
            #expect(try await RawSQL.integers(query, at: location) == Self.versions)
            // Opened again, nothing is applied twice.
            let again = try await location.open()
            try await again.close()
            #expect(try await RawSQL.integers(query, at: location) == Self.versions)
        }
    }

    @Test("A SQLite file at version 4, as the store made before this list, opens and migrates forward")
    func sqliteFileAtVersion4() async throws {
        try await withTestStore(.sqlite) { location in
            try FileManager.default.createDirectory(atPath: location.address, withIntermediateDirectories: true)
            let queue = try DatabaseQueue(path: location.address + "/aesel.sqlite")
            try SQLiteStore.migrator(upTo: 4).migrate(queue)
            try queue.close()
            try await RawSQL.execute("INSERT INTO scene (key, name) VALUES ('old', 'kept')", at: location)

            let store = try await location.open()
            #expect(try await store.scene(key: "old")?.name == "kept")
            try await Self.checkEveryTable(store)
            try await store.close()
            #expect(
                try await RawSQL.integers("SELECT CAST(substr(identifier, 2) AS INTEGER) FROM grdb_migrations ORDER BY 1", at: location)
                    == Self.versions
            )
            #expect(try await RawSQL.integers("SELECT COUNT(*) FROM sqlite_master WHERE name = 'scene_link_to'", at: location) == [1])
        }
    }

    @Test("A PostgreSQL schema made by the unversioned list, without the migrations table, opens as version 2 and migrates forward")
    func unversionedPostgresSchema() async throws {
        try await withTestStore(.postgres) { location in
            try await RawSQL.execute(Self.unversionedPostgresSchema, at: location)
            try await RawSQL.execute("INSERT INTO scene (key, name) VALUES ('old', 'kept')", at: location)

            let store = try await location.open()
            #expect(try await store.scene(key: "old")?.name == "kept")
            try await Self.checkEveryTable(store)
            try await store.close()
            #expect(try await RawSQL.integers("SELECT version FROM aesel_migrations ORDER BY version", at: location) == Self.versions)
        }
    }

    @Test("An older unversioned PostgreSQL schema (before the query indexes and the scene-to-pair table) is completed")
    func olderUnversionedPostgresSchema() async throws {
        try await withTestStore(.postgres) { location in
            // The first PostgreSQL store's list had neither.
            let older = Self.unversionedPostgresSchema.filter { !$0.contains("object_name") && !$0.contains("object_parent") && !$0.contains("object_owner") && !$0.contains("property_name") && !$0.contains("scene_pairs") }
            try await RawSQL.execute(older, at: location)
            try await RawSQL.execute("INSERT INTO scene (key) VALUES ('old')", at: location)
            let store = try await location.open()
            try await Self.checkEveryTable(store)
            try await store.close()
            #expect(try await RawSQL.integers("SELECT COUNT(*) FROM pg_indexes WHERE indexname IN ('object_name', 'object_owner', 'scene_pairs_pair')", at: location) == [3])
        }
    }

    /// What PostgresStore created on every open before the migrations table (commit 6a50352).
    static let unversionedPostgresSchema = [
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
        """
        CREATE TABLE IF NOT EXISTS scene_pairs (
            scene_key TEXT COLLATE "C" PRIMARY KEY,
            pair_id TEXT COLLATE "C" NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS scene_pairs_pair ON scene_pairs(pair_id)",
    ]
}
