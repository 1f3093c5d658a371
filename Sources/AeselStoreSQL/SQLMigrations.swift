/// One step of the schema, written once for both dialects. Versions only ever get added: SQLite records
/// them in GRDB's `grdb_migrations` as `v1`, `v2`, …, PostgreSQL in `aesel_migrations`.
package struct SQLMigration: Sendable {
    package let version: Int
    package let statements: @Sendable (SQLDialect) -> [String]

    /// GRDB's identifier, which SQLite files made before this list already hold.
    package var identifier: String { "v\(version)" }
}

package enum SQLMigrations {
    package static let all: [SQLMigration] = [
        SQLMigration(version: 1) { sql in
            [
                """
                CREATE TABLE scene (
                    key \(sql.keyType) PRIMARY KEY NOT NULL,
                    name TEXT NOT NULL DEFAULT '',
                    description TEXT NOT NULL DEFAULT '',
                    thumbnail TEXT NOT NULL DEFAULT '',
                    region TEXT NOT NULL DEFAULT '',
                    latitude \(sql.doubleType),
                    longitude \(sql.doubleType),
                    distance \(sql.doubleType) NOT NULL DEFAULT 0,
                    active BOOLEAN NOT NULL DEFAULT \(sql.trueValue),
                    public BOOLEAN NOT NULL DEFAULT \(sql.trueValue),
                    assets TEXT NOT NULL DEFAULT '[]',
                    tags TEXT NOT NULL DEFAULT '[]'
                )
                """,
                """
                CREATE TABLE device (
                    scene_key \(sql.keyType) NOT NULL REFERENCES scene(key) ON DELETE CASCADE,
                    key \(sql.keyType) NOT NULL,
                    hostname TEXT NOT NULL,
                    port INTEGER NOT NULL,
                    connection_string TEXT NOT NULL DEFAULT '',
                    format TEXT NOT NULL DEFAULT 'json',
                    translation TEXT NOT NULL DEFAULT '[0,0,0]',
                    rotation TEXT NOT NULL DEFAULT '[0,0,0]',
                    PRIMARY KEY (scene_key, key)
                )
                """,
                """
                CREATE TABLE object (
                    key \(sql.keyType) PRIMARY KEY NOT NULL,
                    scene_key \(sql.keyType) NOT NULL,
                    name TEXT NOT NULL DEFAULT '',
                    type TEXT NOT NULL DEFAULT '',
                    subtype TEXT NOT NULL DEFAULT '',
                    owner TEXT NOT NULL DEFAULT '',
                    parent TEXT NOT NULL DEFAULT '',
                    asset_sub_id TEXT NOT NULL DEFAULT '',
                    transform \(sql.blobType) NOT NULL,
                    assets TEXT NOT NULL DEFAULT '[]',
                    seq \(sql.bigintType) NOT NULL DEFAULT 0
                )
                """,
                "CREATE INDEX object_scene ON object(scene_key)",
            ]
        },
        SQLMigration(version: 2) { sql in
            [
                "ALTER TABLE object ADD COLUMN actions TEXT NOT NULL DEFAULT '[]'",
                "CREATE INDEX device_key ON device(key)",
                """
                CREATE TABLE scene_link (
                    from_scene \(sql.keyType) NOT NULL REFERENCES scene(key) ON DELETE CASCADE,
                    to_scene \(sql.keyType) NOT NULL REFERENCES scene(key) ON DELETE CASCADE,
                    translation TEXT NOT NULL,
                    rotation TEXT NOT NULL,
                    PRIMARY KEY (from_scene, to_scene)
                )
                """,
                """
                CREATE TABLE property (
                    key \(sql.keyType) PRIMARY KEY NOT NULL,
                    scene_key \(sql.keyType) NOT NULL,
                    name TEXT NOT NULL DEFAULT '',
                    parent TEXT NOT NULL DEFAULT '',
                    asset_sub_id TEXT NOT NULL DEFAULT '',
                    property_values TEXT NOT NULL DEFAULT '[]',
                    actions TEXT NOT NULL DEFAULT '[]',
                    seq \(sql.bigintType) NOT NULL DEFAULT 0
                )
                """,
                "CREATE INDEX property_scene ON property(scene_key)",
            ]
        },
        // From here on IF NOT EXISTS: PostgreSQL schemas made before the migrations table (recognised as
        // version 2) may hold some of these already.
        SQLMigration(version: 3) { _ in
            // Queries match names and parents exactly (reference 1.8); lock reloads look for owners.
            [
                "CREATE INDEX IF NOT EXISTS object_name ON object(name)",
                "CREATE INDEX IF NOT EXISTS object_parent ON object(parent)",
                "CREATE INDEX IF NOT EXISTS object_owner ON object(owner) WHERE owner <> ''",
                "CREATE INDEX IF NOT EXISTS property_name ON property(name)",
            ]
        },
        SQLMigration(version: 4) { sql in
            // Adrestia's scene-to-pair mapping. No foreign key: a scene may be assigned before it exists.
            [
                """
                CREATE TABLE IF NOT EXISTS scene_pairs (
                    scene_key \(sql.keyType) PRIMARY KEY NOT NULL,
                    pair_id \(sql.keyType) NOT NULL
                )
                """,
                "CREATE INDEX IF NOT EXISTS scene_pairs_pair ON scene_pairs(pair_id)",
            ]
        },
        SQLMigration(version: 5) { _ in
            // links(touching:) looks for both ends; the primary key covers only `from_scene`.
            ["CREATE INDEX IF NOT EXISTS scene_link_to ON scene_link(to_scene)"]
        },
        SQLMigration(version: 6) { sql in
            // Sealed events: each registration's session key, found by its id when a datagram names it.
            [
                "ALTER TABLE device ADD COLUMN session_key_id BIGINT",
                "ALTER TABLE device ADD COLUMN session_key \(sql.blobType)",
                "CREATE INDEX IF NOT EXISTS device_session_key ON device(session_key_id)",
            ]
        },
    ]
}
