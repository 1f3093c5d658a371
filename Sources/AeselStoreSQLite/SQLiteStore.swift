public import AeselModel
public import AeselStore
import AeselStoreSQL
public import CoreMetrics
import Foundation
import GRDB

#if canImport(Glibc)
import Glibc
#endif

/// The embedded store: one SQLite file, in WAL mode with full synchronous commits.
///
/// GRDB runs every statement on its own serial writer queue (and a reader pool), so callers await
/// without blocking an event loop. Writes are serialized, which makes every `update…` atomic. The
/// tables, statements and migrations are the ones PostgresStore uses too (AeselStoreSQL).
public final class SQLiteStore: AeselStore {
    private let pool: DatabasePool
    private let metrics: SQLStoreMetrics

    /// Opens (creating if needed) the database at `path` and brings its schema up to date, in this
    /// process alone: ``open(dataFolder:patience:metricsFactory:)`` is safe when several processes open one file.
    init(path: String, metricsFactory: any MetricsFactory = MetricsSystem.factory) throws {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        configuration.busyMode = .timeout(5)
        pool = try DatabasePool(path: path, configuration: configuration)
        metrics = SQLStoreMetrics(factory: metricsFactory)
        try Self.migrator().migrate(pool)
    }

    /// Opens `aesel.sqlite` in the data folder, creating both, when other processes may be opening it
    /// at the same moment (the two halves of a pair started together).
    ///
    /// Switching to WAL and migrating are not safe to race: SQLite answers "database is locked" at once,
    /// without waiting, when two connections both try to take the write lock from a read lock, and GRDB
    /// chooses the migrations to run before it takes the lock. So the set-up runs under an exclusive
    /// lock on `aesel.sqlite.setup` beside the database, and a database still busy (another program
    /// holding a write lock) is retried for up to `patience`, then reported with who holds it.
    public static func open(
        dataFolder: String, patience: Duration = .seconds(30), metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) async throws -> SQLiteStore {
        try FileManager.default.createDirectory(atPath: dataFolder, withIntermediateDirectories: true)
        let path = (dataFolder as NSString).appendingPathComponent("aesel.sqlite")
        let deadline = ContinuousClock.now + patience
        let setupLock = try SetupLock(path: path + ".setup")
        defer { setupLock.release() }
        var lastError: any Error
        repeat {
            do {
                if try setupLock.acquire() { return try SQLiteStore(path: path, metricsFactory: metricsFactory) }
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

    /// The shared migrations, up to `version` (all by default), under GRDB's identifiers `v1`, `v2`, ….
    package static func migrator(upTo version: Int = .max) -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for migration in SQLMigrations.all where migration.version <= version {
            migrator.registerMigration(migration.identifier) { db in
                for statement in migration.statements(.sqlite) { try db.execute(sql: statement) }
            }
        }
        return migrator
    }

    public func close() async throws {
        try pool.close()
    }

    // MARK: Scenes

    public func createScene(_ scene: Scene) async throws {
        try await write(key: scene.key) { db in try Self.execute(SceneTable.insert(scene), db) }
    }

    public func scene(key: String) async throws -> Scene? {
        try await read { db in try self.fetch(SceneTable.self, SceneTable.select(key: key), db).first }
    }

    public func updateScene(key: String, _ change: @escaping @Sendable (inout Scene) throws -> Void) async throws -> Scene? {
        try await readModifyWrite(SceneTable.self, key: key, change: change)
    }

    public func deleteScene(key: String) async throws -> Bool {
        try await write { db in
            var deleted = false
            for statement in SceneTable.delete(key: key) { deleted = try !Self.rows(statement, db).isEmpty }
            return deleted
        }
    }

    public func scenes(name: String?, region: String?) async throws -> [Scene] {
        try await read { db in try self.fetch(SceneTable.self, SceneTable.matching(name: name, region: region), db) }
    }

    // MARK: Registration

    public func register(_ device: Device, inScene sceneKey: String) async throws {
        try await write(key: sceneKey) { db in try Self.execute(DeviceTable.upsert(device, inScene: sceneKey), db) }
    }

    public func deregister(deviceKey: String, fromScene sceneKey: String) async throws -> Bool {
        try await write { db in try !Self.rows(DeviceTable.delete(deviceKey: deviceKey, sceneKey: sceneKey), db).isEmpty }
    }

    public func devices(inScene sceneKey: String) async throws -> [Device] {
        try await read { db in try self.fetch(DeviceTable.self, DeviceTable.inScene(sceneKey), db).map(\.device) }
    }

    public func registrations(ofDevice deviceKey: String) async throws -> [(sceneKey: String, device: Device)] {
        try await read { db in try self.fetch(DeviceTable.self, DeviceTable.ofDevice(deviceKey), db) }
    }

    public func registration(sessionKeyID: UInt64) async throws -> (sceneKey: String, device: Device)? {
        try await read { db in try self.fetch(DeviceTable.self, DeviceTable.withSessionKey(id: sessionKeyID), db).first }
    }

    // MARK: Scene links

    public func setLink(_ link: SceneLink) async throws {
        try await write(key: "\(link.from) or \(link.to)") { db in
            for statement in SceneLinkTable.set(link) { try Self.execute(statement, db) }
        }
    }

    public func links(touching sceneKeys: [String]) async throws -> [SceneLink] {
        guard !sceneKeys.isEmpty else { return [] }
        return try await read { db in try self.fetch(SceneLinkTable.self, SceneLinkTable.touching(sceneKeys), db) }
    }

    // MARK: Scene-to-pair mapping

    public func pairOfScene(_ sceneKey: String) async throws -> String? {
        try await read { db in try self.strings("pair_id", of: ScenePairTable.name, ScenePairTable.pair(ofScene: sceneKey), db).first }
    }

    public func assignScene(_ sceneKey: String, toPair pairID: String, ifCurrently expected: String?) async throws -> Bool {
        try await write { db in try !Self.rows(ScenePairTable.assign(sceneKey, toPair: pairID, ifCurrently: expected), db).isEmpty }
    }

    public func scenes(onPair pairID: String) async throws -> [String] {
        try await read { db in try self.strings("scene_key", of: ScenePairTable.name, ScenePairTable.scenes(onPair: pairID), db) }
    }

    public func sceneCountsByPair() async throws -> [String: Int] {
        try await read { db in
            let counts = try Self.rows(ScenePairTable.counts, db).map { row in
                let reader = self.reader(row, table: ScenePairTable.name)
                return (try reader.string("pair_id"), Int(try reader.int64("scenes")))
            }
            return Dictionary(uniqueKeysWithValues: counts)
        }
    }

    // MARK: Objects

    public func createObject(_ object: SceneObject) async throws {
        try await write(key: object.key) { db in try Self.execute(ObjectTable.insert(object), db) }
    }

    public func object(key: String) async throws -> SceneObject? {
        try await read { db in try self.fetch(ObjectTable.self, ObjectTable.select(key: key), db).first }
    }

    public func updateObject(key: String, _ change: @escaping @Sendable (inout SceneObject) throws -> Void) async throws -> SceneObject? {
        try await readModifyWrite(ObjectTable.self, key: key, change: change)
    }

    public func deleteObject(key: String) async throws -> SceneObject? {
        try await write { db in try self.fetch(ObjectTable.self, ObjectTable.delete(key: key), db).first }
    }

    public func objects(matching filter: ObjectFilter, limit: Int) async throws -> [SceneObject] {
        try await read { db in try self.fetch(ObjectTable.self, ObjectTable.matching(filter, limit: limit, dialect: .sqlite), db) }
    }

    public func objectLocks() async throws -> [ObjectLock] {
        try await read { db in try Self.rows(ObjectTable.locks, db).map { try ObjectTable.lock(self.reader($0, table: ObjectTable.name)) } }
    }

    public func applyTransforms(_ updates: [TransformUpdate]) async throws -> Int {
        try await applyEventWrites(EventWrites<Data>.transforms(updates))
    }

    // MARK: Properties

    public func createProperty(_ property: SceneProperty) async throws {
        try await write(key: property.key) { db in try Self.execute(PropertyTable.insert(property), db) }
    }

    public func property(key: String) async throws -> SceneProperty? {
        try await read { db in try self.fetch(PropertyTable.self, PropertyTable.select(key: key), db).first }
    }

    public func updateProperty(key: String, _ change: @escaping @Sendable (inout SceneProperty) throws -> Void) async throws -> SceneProperty? {
        try await readModifyWrite(PropertyTable.self, key: key, change: change)
    }

    public func deleteProperty(key: String) async throws -> SceneProperty? {
        try await write { db in try self.fetch(PropertyTable.self, PropertyTable.delete(key: key), db).first }
    }

    public func properties(matching filter: PropertyFilter, limit: Int) async throws -> [SceneProperty] {
        try await read { db in try self.fetch(PropertyTable.self, PropertyTable.matching(filter, limit: limit), db) }
    }

    public func applyPropertyValues(_ updates: [PropertyValuesUpdate]) async throws -> Int {
        try await applyEventWrites(EventWrites<String>.propertyValues(updates))
    }

    public func memberKeys(ofScene sceneKey: String) async throws -> SceneMemberKeys {
        try await read { db in
            SceneMemberKeys(
                objects: Set(try self.strings("key", of: ObjectTable.name, ObjectTable.keys(inScene: sceneKey), db)),
                properties: Set(try self.strings("key", of: PropertyTable.name, PropertyTable.keys(inScene: sceneKey), db))
            )
        }
    }

    // MARK: Statements

    private static func arguments(_ statement: SQLStatement) -> StatementArguments {
        StatementArguments(statement.values.map { value -> (any DatabaseValueConvertible)? in
            switch value {
            case .text(let text): text
            case .real(let number): number
            case .integer(let integer): integer
            case .bool(let bool): bool
            case .blob(let data): data
            case .null: nil
            }
        })
    }

    private static func execute(_ statement: SQLStatement, _ db: Database) throws {
        try db.execute(sql: statement.sql(.sqlite), arguments: arguments(statement))
    }

    private static func rows(_ statement: SQLStatement, _ db: Database) throws -> [Row] {
        try Row.fetchAll(db, sql: statement.sql(.sqlite), arguments: arguments(statement))
    }

    private func reader(_ row: Row, table: String) -> RowReader<Columns> {
        RowReader(Columns(row: row), table: table, metrics: metrics)
    }

    private func fetch<Table: SQLTable>(_ table: Table.Type, _ statement: SQLStatement, _ db: Database) throws -> [Table.Record] {
        try Self.rows(statement, db).map { try Table.decode(reader($0, table: Table.name)) }
    }

    /// One text column of each row of `table`.
    private func strings(_ column: String, of table: String, _ statement: SQLStatement, _ db: Database) throws -> [String] {
        try Self.rows(statement, db).map { try reader($0, table: table).string(column) }
    }

    private func read<Result: Sendable>(_ body: @escaping @Sendable (Database) throws -> Result) async throws -> Result {
        do {
            return try await pool.read(body)
        } catch {
            throw Self.storeError(error, key: nil)
        }
    }

    /// Runs `body` in one write transaction; `key` names the row a constraint failure is about.
    private func write<Result: Sendable>(key: String? = nil, _ body: @escaping @Sendable (Database) throws -> Result) async throws -> Result {
        do {
            return try await pool.write(body)
        } catch {
            throw Self.storeError(error, key: key)
        }
    }

    /// Reads the row `key`, lets `change` edit it and writes it back, in one transaction (SQLite's single
    /// writer makes it atomic). Returns the record as stored (with its key, whatever `change` does), or nil
    /// when there is no such row.
    private func readModifyWrite<Table: KeyedSQLTable>(
        _ table: Table.Type, key: String, change: @escaping @Sendable (inout Table.Record) throws -> Void
    ) async throws -> Table.Record? {
        try await write(key: key) { db in
            guard var record = try self.fetch(Table.self, Table.select(key: key), db).first else { return nil }
            try change(&record)
            record.key = key
            record = record.stored
            try Self.execute(Table.update(record, key: key), db)
            return record
        }
    }

    /// Writes event updates with one prepared statement in one transaction. They are never acknowledged,
    /// so their commit skips the fsync; the next acknowledged (synchronous = FULL) commit makes them
    /// durable with it.
    private func applyEventWrites<Value>(_ writes: EventWrites<Value>) async throws -> Int {
        guard !writes.keys.isEmpty else { return 0 }
        do {
            return try await pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
                defer { try? db.execute(sql: "PRAGMA synchronous = FULL") }
                var changed = 0
                try db.inTransaction {
                    let statement = try db.cachedStatement(sql: writes.update(0).sql(.sqlite))
                    for index in writes.keys.indices {
                        try statement.execute(arguments: Self.arguments(writes.update(index)))
                        changed += db.changesCount
                    }
                    return .commit
                }
                return changed
            }
        } catch {
            throw Self.storeError(error, key: nil)
        }
    }

    /// SQLite's errors as the store's; a StoreError (a corrupt row) and the errors of `update…` closures
    /// pass through.
    static func storeError(_ error: any Error, key: String?) -> any Error {
        guard let error = error as? DatabaseError else { return error }
        let row = key.map { "the key \($0)" } ?? "a row"
        switch (error.resultCode, error.extendedResultCode) {
        case (.SQLITE_CONSTRAINT, .SQLITE_CONSTRAINT_PRIMARYKEY), (.SQLITE_CONSTRAINT, .SQLITE_CONSTRAINT_UNIQUE):
            return StoreError(.duplicate, "\(row) already exists", underlyingError: error)
        case (.SQLITE_CONSTRAINT, .SQLITE_CONSTRAINT_FOREIGNKEY):
            return StoreError(.notFound, "there is no scene \(key ?? "")", underlyingError: error)
        case (.SQLITE_CONSTRAINT, _), (.SQLITE_TOOBIG, _), (.SQLITE_MISMATCH, _), (.SQLITE_RANGE, _):
            return StoreError(.invalid, "SQLite refuses a value for \(row)", underlyingError: error)
        case (.SQLITE_BUSY, _), (.SQLITE_LOCKED, _), (.SQLITE_IOERR, _), (.SQLITE_FULL, _), (.SQLITE_CANTOPEN, _),
            (.SQLITE_READONLY, _), (.SQLITE_PROTOCOL, _), (.SQLITE_NOMEM, _), (.SQLITE_MISUSE, _):
            // MISUSE: the store was closed.
            return StoreError(.unavailable, "SQLite cannot answer now", underlyingError: error)
        case (.SQLITE_CORRUPT, _), (.SQLITE_NOTADB, _):
            return StoreError(.corrupt, "the SQLite file is damaged", underlyingError: error)
        default:
            return StoreError(.unexpected, "SQLite failed", underlyingError: error)
        }
    }
}

/// GRDB's row as ``SQLRow``.
private struct Columns: SQLRow {
    let row: Row

    private func value<Value: DatabaseValueConvertible>(_ column: String, as type: Value.Type) throws -> Value? {
        guard row.hasColumn(column) else { throw StoreError(.unexpected, "no column \(column) in the result") }
        return try row.decode(Value?.self, forColumn: column)
    }

    func text(_ column: String) throws -> String? { try value(column, as: String.self) }
    func real(_ column: String) throws -> Double? { try value(column, as: Double.self) }
    func integer(_ column: String) throws -> Int64? { try value(column, as: Int64.self) }
    func bool(_ column: String) throws -> Bool? { try value(column, as: Bool.self) }
    func blob(_ column: String) throws -> Data? { try value(column, as: Data.self) }
}
