public import AeselModel
public import AeselStore
import AeselStoreSQL
public import CoreMetrics
import Foundation
public import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import _ConnectionPoolModule

/// The shared store: PostgreSQL through postgres-nio's pooled `PostgresClient`.
///
/// The tables, statements and migrations are SQLiteStore's (AeselStoreSQL): lists, vectors and actions are
/// JSON text, a transform is a `bytea` of 16 little-endian float64s. Every protocol method is one
/// transaction; `update…` methods lock the row (`SELECT … FOR UPDATE`), run the closure in Swift and write
/// every column back, so concurrent updates of one row are serialized.
///
/// The client's background work (`PostgresClient.run()`) starts with the store, so that it answers before
/// any service group runs (start-up reads the locks and scene members), and ends with ``close()``: the
/// store's `run()` calls it at graceful shutdown, after the services that write to it. Every call is async
/// on postgres-nio's event loops: nothing blocks one.
public final class PostgresStore: AeselStore {
    /// A database URL that is not `postgres://user[:password]@host[:port]/database`: an ``StoreErrorCode/invalid``
    /// error whose message shows the URL without its password, which must not reach a log.
    static func invalidURL(_ url: String) -> StoreError {
        var redacted = url.contains("@") ? "(unparsable URL with credentials)" : url
        if var components = URLComponents(string: url), components.password != nil {
            components.password = "***"
            redacted = components.string ?? redacted
        }
        return StoreError(.invalid, "not a PostgreSQL URL (expected postgres://user[:password]@host[:port]/database): \(redacted)")
    }

    private let client: PostgresClient
    /// Runs `client.run()` from `init` to ``close()`` (or `deinit`), which cancel it.
    private let clientTask: Task<Void, Never>
    private let logger: Logger
    private let metrics: SQLStoreMetrics

    /// Connects to the database at `url` (`postgres://user[:password]@host[:port]/database`, TLS as its
    /// `sslmode` asks: ``TLSMode``) and applies the migrations it lacks.
    /// A server that cannot be reached yet (it may be starting too) is retried for up to `patience`; one
    /// that refuses TLS, or whose certificate does not verify, fails at once.
    /// - Parameter certificateAuthority: PEM, what `verify-ca` and `verify-full` trust when the URL names
    ///   no `sslrootcert`; nil for the system's roots.
    public init(
        url: String, certificateAuthority: String? = nil, patience: Duration = .seconds(30), logger: Logger = Logger(label: "aesel.store.postgres"),
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) async throws {
        let parts = try ConnectionURL(url)
        let configuration = try Self.configuration(url: url, certificateAuthority: certificateAuthority)
        let deadline = ContinuousClock.now + patience
        if let tls = try parts.tlsConfiguration(certificateAuthority: certificateAuthority) {
            try await Self.checkTLS(parts, tls, until: deadline, logger: logger)
        }
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        self.logger = logger
        metrics = SQLStoreMetrics(factory: metricsFactory)
        clientTask = await Self.startRunning(client)
        while true {
            do {
                try await migrate()
                return
            } catch let error as StoreError where error.code == .unavailable && ContinuousClock.now < deadline {
                logger.debug("PostgreSQL not reachable yet", metadata: ["error": "\(String(reflecting: error.underlyingError ?? error))"])
                try? await Task.sleep(for: .milliseconds(250))
            } catch {
                await close()
                let address = "postgres://\(parts.host):\(parts.port)/\(parts.database ?? parts.user)"
                guard let failure = error as? StoreError else { throw error }
                let retried = failure.code == .unavailable ? " (retried for \(patience))" : ""
                throw StoreError(failure.code, "cannot open \(address)\(retried): \(failure.message)", underlyingError: failure.underlyingError)
            }
        }
    }

    deinit {
        clientTask.cancel()
    }

    /// Cancels the client's run task and waits until its connections are closed. Safe to call twice.
    public func close() async {
        clientTask.cancel()
        await clientTask.value
    }

    /// Starts `client.run()` in a task, returning once the task is running it: a lease made before `run()`
    /// starts still works, but postgres-nio warns about it.
    private static func startRunning(_ client: PostgresClient) async -> Task<Void, Never> {
        let (started, start) = AsyncStream<Void>.makeStream()
        // Cancelled by the store's close() or deinit, or by administer(), which own it.
        let task = Task {
            start.finish()
            await client.run()
        }
        for await _ in started {}
        return task
    }

    // MARK: Connection and schema

    /// What a URL's `sslmode` asks for, by libpq's names; `disable` when it has none.
    enum TLSMode: String, Equatable, CaseIterable {
        /// Plain TCP.
        case disable
        /// TLS when the server offers it, unverified; else plain.
        case prefer
        /// TLS or nothing, unverified: encrypted, but open to a man in the middle.
        case require
        /// TLS with a certificate signed by a trusted authority, for any host name.
        case verifyCA = "verify-ca"
        /// TLS with a trusted certificate for the URL's host.
        case verifyFull = "verify-full"
    }

    /// The parts of a `postgres://user[:password]@host[:port]/database[?sslmode=…&sslrootcert=…]` URL.
    struct ConnectionURL: Equatable {
        var user: String
        var password: String?
        var host: String
        var port: Int
        /// nil when the URL names none: the server then uses the user's name.
        var database: String?
        var tlsMode: TLSMode
        /// `sslrootcert`: a PEM file of the authorities `verify-*` trusts, or `system` for the system's.
        var rootCertificate: String?

        init(
            user: String, password: String? = nil, host: String, port: Int = 5432, database: String? = nil, tlsMode: TLSMode = .disable,
            rootCertificate: String? = nil
        ) {
            self.user = user
            self.password = password
            self.host = host
            self.port = port
            self.database = database
            self.tlsMode = tlsMode
            self.rootCertificate = rootCertificate
        }

        init(_ url: String) throws {
            guard
                let components = URLComponents(string: url),
                components.scheme == "postgres" || components.scheme == "postgresql",
                let host = components.host, !host.isEmpty,
                let user = components.user, !user.isEmpty
            else { throw PostgresStore.invalidURL(url) }
            var database = components.path
            if database.hasPrefix("/") { database.removeFirst() }
            guard !database.contains("/") else { throw PostgresStore.invalidURL(url) }
            let query = components.queryItems ?? []
            let modeName = query.last { $0.name == "sslmode" }?.value ?? TLSMode.disable.rawValue
            guard let tlsMode = TLSMode(rawValue: modeName) else {
                throw StoreError(.invalid, "sslmode=\(modeName) is not one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            self.init(
                user: user,
                password: components.password,
                host: host,
                port: components.port ?? 5432,
                database: database.isEmpty ? nil : database,
                tlsMode: tlsMode,
                rootCertificate: query.last { $0.name == "sslrootcert" }?.value
            )
        }

        /// The client TLS configuration the mode asks for, or nil for plain TCP.
        func tlsConfiguration(certificateAuthority: String?) throws -> TLSConfiguration? {
            var configuration = TLSConfiguration.makeClientConfiguration()
            switch tlsMode {
            case .disable: return nil
            case .prefer, .require: configuration.certificateVerification = .none
            case .verifyCA: configuration.certificateVerification = .noHostnameVerification
            case .verifyFull: configuration.certificateVerification = .fullVerification
            }
            if tlsMode == .verifyCA || tlsMode == .verifyFull, let path = rootCertificate ?? certificateAuthority, path != "system" {
                do {
                    configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(path))
                } catch {
                    throw StoreError(.invalid, "cannot read the PostgreSQL root certificates \(path): \(error)")
                }
            }
            return configuration
        }
    }

    static func configuration(url: String, certificateAuthority: String? = nil) throws -> PostgresClient.Configuration {
        let parts = try ConnectionURL(url)
        let tlsConfiguration = try parts.tlsConfiguration(certificateAuthority: certificateAuthority)
        let tls: PostgresClient.Configuration.TLS =
            switch (parts.tlsMode, tlsConfiguration) {
            case (_, nil): .disable
            case (.prefer, let configuration?): .prefer(configuration)
            case (_, let configuration?): .require(configuration)
            }
        return PostgresClient.Configuration(
            host: parts.host,
            port: parts.port,
            username: parts.user,
            password: parts.password,
            database: parts.database,
            tls: tls
        )
    }

    /// The pool would report a server without TLS, or a certificate that does not verify, only as
    /// "cannot be reached" once `deadline` has passed: one direct connection says which, at once. A
    /// server not up yet is retried until `deadline`; after that, and on any other error, the pool's own
    /// attempt reports.
    private static func checkTLS(_ parts: ConnectionURL, _ tls: TLSConfiguration, until deadline: ContinuousClock.Instant, logger: Logger) async throws {
        let address = "\(parts.host):\(parts.port)"
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: tls)
        } catch {
            throw StoreError(.invalid, "cannot set up TLS to PostgreSQL at \(address): \(error)")
        }
        let configuration = PostgresConnection.Configuration(
            host: parts.host, port: parts.port, username: parts.user, password: parts.password, database: parts.database,
            tls: parts.tlsMode == .prefer ? .prefer(context) : .require(context))
        while true {
            do {
                try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger).close()
                return
            } catch let error as PSQLError where error.code == .sslUnsupported {
                throw StoreError(.invalid, "PostgreSQL at \(address) does not offer TLS, which sslmode=\(parts.tlsMode.rawValue) asks for", underlyingError: error)
            } catch let error as PSQLError where error.underlying is NIOSSLError || error.underlying is BoringSSLError {
                throw StoreError(
                    .invalid, "TLS to PostgreSQL at \(address) failed (sslmode=\(parts.tlsMode.rawValue)): \(String(describing: error.underlying!))",
                    underlyingError: error)
            } catch {
                guard ContinuousClock.now < deadline, !(error is CancellationError) else { return }
                logger.debug("PostgreSQL not reachable yet", metadata: ["error": "\(String(reflecting: error))"])
                try await Task.sleep(for: .milliseconds(250))
            }
        }
    }

    /// Every schema made before the migrations table, by a list of `CREATE … IF NOT EXISTS`, holds what
    /// versions 1 and 2 create; the later versions tolerate what it may hold of theirs.
    static let unversionedSchemaVersion = 2

    /// Applies the versions `aesel_migrations` lacks, in one transaction. The advisory lock serializes
    /// stores that start at the same time: the others wait, then find nothing left to do.
    private func migrate() async throws {
        try await transaction { connection in
            try await self.rows("SELECT pg_advisory_xact_lock(\(Self.schemaLockID))", on: connection)
            try await self.rows(
                "CREATE TABLE IF NOT EXISTS aesel_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                on: connection
            )
            var applied = Set(
                try await self.rows("SELECT version FROM aesel_migrations", on: connection).map {
                    try self.reader($0, table: "aesel_migrations").int64("version")
                }
            )
            if applied.isEmpty, try await self.hasTable("scene", on: connection) {
                for version in 1...Int64(Self.unversionedSchemaVersion) {
                    try await self.rows("INSERT INTO aesel_migrations (version) VALUES (\(version))", on: connection)
                    applied.insert(version)
                }
            }
            for migration in SQLMigrations.all where !applied.contains(Int64(migration.version)) {
                for statement in migration.statements(.postgres) {
                    try await self.rows(SQLStatement(stringLiteral: statement), on: connection)
                }
                try await self.rows("INSERT INTO aesel_migrations (version) VALUES (\(Int64(migration.version)))", on: connection)
            }
        }
    }

    /// Whether the table `name` (a constant, spliced: `to_regclass` takes a cstring before PostgreSQL 14) exists.
    private func hasTable(_ name: String, on connection: PostgresConnection) async throws -> Bool {
        let found = try await rows("SELECT to_regclass('\(sql: name)') IS NOT NULL AS found", on: connection)
        return try found.first.map { try reader($0, table: "aesel_migrations").bool("found") } ?? false
    }

    /// An arbitrary constant: "Aesel" in ASCII.
    private static let schemaLockID: Int64 = 0x41_65_73_65_6C

    // MARK: Scenes

    public func createScene(_ scene: Scene) async throws {
        try await rows(SceneTable.insert(scene), key: scene.key)
    }

    public func scene(key: String) async throws -> Scene? {
        try await fetch(SceneTable.self, SceneTable.select(key: key)).first
    }

    public func updateScene(key: String, _ change: @escaping @Sendable (inout Scene) throws -> Void) async throws -> Scene? {
        try await readModifyWrite(SceneTable.self, key: key, change: change)
    }

    public func deleteScene(key: String) async throws -> Bool {
        try await transaction { connection in
            var deleted = false
            for statement in SceneTable.delete(key: key) { deleted = try await !self.rows(statement, on: connection).isEmpty }
            return deleted
        }
    }

    public func scenes(name: String?, region: String?) async throws -> [Scene] {
        try await fetch(SceneTable.self, SceneTable.matching(name: name, region: region))
    }

    // MARK: Registration

    public func register(_ device: Device, inScene sceneKey: String) async throws {
        try await rows(DeviceTable.upsert(device, inScene: sceneKey), key: sceneKey)
    }

    public func deregister(deviceKey: String, fromScene sceneKey: String) async throws -> Bool {
        try await !rows(DeviceTable.delete(deviceKey: deviceKey, sceneKey: sceneKey)).isEmpty
    }

    public func devices(inScene sceneKey: String) async throws -> [Device] {
        try await fetch(DeviceTable.self, DeviceTable.inScene(sceneKey)).map(\.device)
    }

    public func registrations(ofDevice deviceKey: String) async throws -> [(sceneKey: String, device: Device)] {
        try await fetch(DeviceTable.self, DeviceTable.ofDevice(deviceKey))
    }

    public func registration(sessionKeyID: UInt64) async throws -> (sceneKey: String, device: Device)? {
        try await fetch(DeviceTable.self, DeviceTable.withSessionKey(id: sessionKeyID)).first
    }

    // MARK: Scene links

    public func setLink(_ link: SceneLink) async throws {
        try await transaction(key: "\(link.from) or \(link.to)") { connection in
            for statement in SceneLinkTable.set(link) { try await self.rows(statement, on: connection) }
        }
    }

    public func links(touching sceneKeys: [String]) async throws -> [SceneLink] {
        guard !sceneKeys.isEmpty else { return [] }
        return try await fetch(SceneLinkTable.self, SceneLinkTable.touching(sceneKeys))
    }

    // MARK: Scene-to-pair mapping

    public func pairOfScene(_ sceneKey: String) async throws -> String? {
        try await strings("pair_id", of: ScenePairTable.name, ScenePairTable.pair(ofScene: sceneKey)).first
    }

    public func assignScene(_ sceneKey: String, toPair pairID: String, ifCurrently expected: String?) async throws -> Bool {
        try await !rows(ScenePairTable.assign(sceneKey, toPair: pairID, ifCurrently: expected)).isEmpty
    }

    public func scenes(onPair pairID: String) async throws -> [String] {
        try await strings("scene_key", of: ScenePairTable.name, ScenePairTable.scenes(onPair: pairID))
    }

    public func sceneCountsByPair() async throws -> [String: Int] {
        let counts = try await rows(ScenePairTable.counts).map { row in
            let reader = self.reader(row, table: ScenePairTable.name)
            return (try reader.string("pair_id"), Int(try reader.int64("scenes")))
        }
        return Dictionary(uniqueKeysWithValues: counts)
    }

    // MARK: Objects

    public func createObject(_ object: SceneObject) async throws {
        try await rows(ObjectTable.insert(object), key: object.key)
    }

    public func object(key: String) async throws -> SceneObject? {
        try await fetch(ObjectTable.self, ObjectTable.select(key: key)).first
    }

    public func updateObject(key: String, _ change: @escaping @Sendable (inout SceneObject) throws -> Void) async throws -> SceneObject? {
        try await readModifyWrite(ObjectTable.self, key: key, change: change)
    }

    public func deleteObject(key: String) async throws -> SceneObject? {
        try await fetch(ObjectTable.self, ObjectTable.delete(key: key)).first
    }

    public func objects(matching filter: ObjectFilter, limit: Int) async throws -> [SceneObject] {
        try await fetch(ObjectTable.self, ObjectTable.matching(filter, limit: limit, dialect: .postgres))
    }

    public func objectLocks() async throws -> [ObjectLock] {
        try await rows(ObjectTable.locks).map { try ObjectTable.lock(reader($0, table: ObjectTable.name)) }
    }

    public func applyTransforms(_ updates: [TransformUpdate]) async throws -> Int {
        try await applyEventWrites(EventWrites<Data>.transforms(updates), as: "bytea") { ByteBuffer(bytes: $0) }
    }

    // MARK: Properties

    public func createProperty(_ property: SceneProperty) async throws {
        try await rows(PropertyTable.insert(property), key: property.key)
    }

    public func property(key: String) async throws -> SceneProperty? {
        try await fetch(PropertyTable.self, PropertyTable.select(key: key)).first
    }

    public func updateProperty(key: String, _ change: @escaping @Sendable (inout SceneProperty) throws -> Void) async throws -> SceneProperty? {
        try await readModifyWrite(PropertyTable.self, key: key, change: change)
    }

    public func deleteProperty(key: String) async throws -> SceneProperty? {
        try await fetch(PropertyTable.self, PropertyTable.delete(key: key)).first
    }

    public func properties(matching filter: PropertyFilter, limit: Int) async throws -> [SceneProperty] {
        try await fetch(PropertyTable.self, PropertyTable.matching(filter, limit: limit))
    }

    public func applyPropertyValues(_ updates: [PropertyValuesUpdate]) async throws -> Int {
        try await applyEventWrites(EventWrites<String>.propertyValues(updates), as: "text") { $0 }
    }

    public func memberKeys(ofScene sceneKey: String) async throws -> SceneMemberKeys {
        SceneMemberKeys(
            objects: Set(try await strings("key", of: ObjectTable.name, ObjectTable.keys(inScene: sceneKey))),
            properties: Set(try await strings("key", of: PropertyTable.name, PropertyTable.keys(inScene: sceneKey)))
        )
    }

    // MARK: Statements

    private static func query(_ statement: SQLStatement) -> PostgresQuery {
        var binds = PostgresBindings(capacity: statement.values.count)
        for value in statement.values {
            switch value {
            case .text(let text): binds.append(text)
            case .real(let number): binds.append(number)
            case .integer(let integer): binds.append(integer)
            case .bool(let bool): binds.append(bool)
            case .blob(let data): binds.append(ByteBuffer(bytes: data))
            case .null: binds.appendNull()
            }
        }
        return PostgresQuery(unsafeSQL: statement.sql(.postgres), binds: binds)
    }

    /// Runs one statement (its own transaction) and collects its rows; `key` names the row a constraint
    /// failure is about.
    @discardableResult
    private func rows(_ statement: SQLStatement, key: String? = nil) async throws -> [PostgresRow] {
        do {
            return try await client.query(Self.query(statement), logger: logger).collect()
        } catch {
            throw Self.storeError(error, key: key)
        }
    }

    /// Runs one statement of a ``transaction(key:_:)``, which translates its errors.
    @discardableResult
    private func rows(_ statement: SQLStatement, on connection: PostgresConnection) async throws -> [PostgresRow] {
        try await connection.query(Self.query(statement), logger: logger).collect()
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws (its error is
    /// rethrown as it is, a PostgreSQL one translated).
    private func transaction<Result: Sendable>(
        key: String? = nil, _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        do {
            return try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        } catch {
            throw Self.storeError(error, key: key)
        }
    }

    private func reader(_ row: PostgresRow, table: String) -> RowReader<Columns> {
        RowReader(Columns(row: PostgresRandomAccessRow(row)), table: table, metrics: metrics)
    }

    private func decode<Table: SQLTable>(_ table: Table.Type, _ rows: [PostgresRow]) throws -> [Table.Record] {
        try rows.map { try Table.decode(reader($0, table: Table.name)) }
    }

    private func fetch<Table: SQLTable>(_ table: Table.Type, _ statement: SQLStatement) async throws -> [Table.Record] {
        try decode(Table.self, try await rows(statement))
    }

    /// One text column of each row of `table`.
    private func strings(_ column: String, of table: String, _ statement: SQLStatement) async throws -> [String] {
        try await rows(statement).map { try reader($0, table: table).string(column) }
    }

    /// Reads the row `key` and locks it until the transaction ends: the one `SELECT … FOR UPDATE`.
    private func lockedRow<Table: KeyedSQLTable>(_ table: Table.Type, key: String, on connection: PostgresConnection) async throws -> Table.Record? {
        try decode(Table.self, try await rows("\(Table.select(key: key)) FOR UPDATE", on: connection)).first
    }

    /// Locks the row `key`, lets `change` edit it and writes every column back. Returns the record as stored
    /// (with its key, whatever `change` does), or nil when there is no such row.
    private func readModifyWrite<Table: KeyedSQLTable>(
        _ table: Table.Type, key: String, change: @escaping @Sendable (inout Table.Record) throws -> Void
    ) async throws -> Table.Record? {
        try await transaction(key: key) { connection in
            guard var record = try await self.lockedRow(Table.self, key: key, on: connection) else { return nil }
            try change(&record)
            record.key = key
            record = record.stored
            try await self.rows(Table.update(record, key: key), on: connection)
            return record
        }
    }

    /// Writes a batch of event updates in one statement, each column bound as one array (`type` is the
    /// value's), and counts the rows it changed. Events are never acknowledged, so, like SQLiteStore's,
    /// their commit does not wait for the WAL flush; the next acknowledged commit makes them durable with it.
    private func applyEventWrites<Value, Element: PostgresArrayEncodable & PostgresNonThrowingEncodable>(
        _ writes: EventWrites<Value>, as type: String, _ element: (Value) -> Element
    ) async throws -> Int {
        guard !writes.keys.isEmpty else { return 0 }
        var binds = PostgresBindings(capacity: 4)
        binds.append(writes.keys)
        binds.append(writes.sceneKeys)
        binds.append(writes.values.map(element))
        binds.append(writes.sequences)
        let table = writes.table
        let update = PostgresQuery(
            unsafeSQL: """
                WITH changed AS (
                    UPDATE \(table) SET \(writes.valueColumn) = batch.value, seq = batch.seq
                    FROM unnest($1::text[], $2::text[], $3::\(type)[], $4::int8[]) AS batch(key, scene_key, value, seq)
                    WHERE \(table).key = batch.key AND \(table).scene_key = batch.scene_key
                    RETURNING 1
                )
                SELECT count(*) AS changed FROM changed
                """,
            binds: binds
        )
        return try await transaction { connection in
            try await self.rows("SET LOCAL synchronous_commit = off", on: connection)
            let rows = try await connection.query(update, logger: self.logger).collect()
            return try rows.first.map { Int(try self.reader($0, table: table).int64("changed")) } ?? 0
        }
    }

    /// PostgreSQL's errors as the store's; a StoreError (a corrupt row) and the errors of `update…` closures
    /// pass through.
    static func storeError(_ error: any Error, key: String?) -> any Error {
        if let error = error as? PostgresTransactionError {
            // The closure's error first: it is why the transaction rolled back.
            guard let cause = error.closureError ?? error.beginError ?? error.commitError else {
                return StoreError(.unexpected, "the PostgreSQL transaction failed", underlyingError: error)
            }
            return storeError(cause, key: key)
        }
        if let error = error as? ConnectionPoolError {
            // The pool is shut down (the store closed), or has failed to connect for a while.
            return StoreError(.unavailable, "PostgreSQL cannot be reached", underlyingError: error)
        }
        guard let error = error as? PSQLError else { return error }
        let row = key.map { "the key \($0)" } ?? "a row"
        guard error.code == .server else {
            switch error.code {
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed, .queryCancelled:
                return StoreError(.unavailable, "PostgreSQL cannot be reached (\(error.code))", underlyingError: error)
            case .tooManyParameters:
                return StoreError(.invalid, "too many values for one PostgreSQL statement", underlyingError: error)
            default:
                return StoreError(.unexpected, "PostgreSQL failed (\(error.code))", underlyingError: error)
            }
        }
        let state = error.serverInfo?[.sqlState] ?? ""
        switch state {
        case "23505":
            return StoreError(.duplicate, "\(row) already exists", underlyingError: error)
        case "23503":
            return StoreError(.notFound, "there is no scene \(key ?? "")", underlyingError: error)
        case _ where state.hasPrefix("08") || state.hasPrefix("53") || state.hasPrefix("58") || state.hasPrefix("57P"):
            // Connection exceptions, insufficient resources (disk full, too many connections), system
            // (I/O) errors, a server shutting down or starting up.
            return StoreError(.unavailable, "PostgreSQL cannot answer now (SQLSTATE \(state))", underlyingError: error)
        case _ where state.hasPrefix("22") || state.hasPrefix("23"):
            return StoreError(.invalid, "PostgreSQL refuses a value for \(row) (SQLSTATE \(state))", underlyingError: error)
        default:
            return StoreError(.unexpected, "PostgreSQL failed (SQLSTATE \(state))", underlyingError: error)
        }
    }
}

/// PostgresNIO's row as ``SQLRow``.
private struct Columns: SQLRow {
    let row: PostgresRandomAccessRow

    private func value<Value: PostgresDecodable>(_ column: String, as type: Value.Type) throws -> Value? {
        guard row.contains(column) else { throw StoreError(.unexpected, "no column \(column) in the result") }
        let cell = row[column]
        guard cell.bytes != nil else { return nil }
        return try cell.decode(Value.self)
    }

    func text(_ column: String) throws -> String? { try value(column, as: String.self) }
    func real(_ column: String) throws -> Double? { try value(column, as: Double.self) }
    func integer(_ column: String) throws -> Int64? { try value(column, as: Int64.self) }
    func bool(_ column: String) throws -> Bool? { try value(column, as: Bool.self) }
    func blob(_ column: String) throws -> Data? { try value(column, as: Data.self) }
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
