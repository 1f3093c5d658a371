import AeselStore
@testable import AeselStorePostgres
import AeselStoreSQLite
import AeselTesting
import CoreMetrics
import GRDB
import PostgresNIO

/// The rows of a test store reached without it, as an operator with the sqlite3 shell or psql would:
/// to damage them, or to lay out what an older version made.
enum RawSQL {
    /// Runs each statement on the location's database, in order.
    static func execute(_ statements: [String], at location: TestStore) async throws {
        switch location.kind {
        case .memory:
            preconditionFailure("an in-memory store has no SQL")
        case .sqlite:
            let queue = try DatabaseQueue(path: location.address + "/aesel.sqlite")
            try await queue.write { db in
                for statement in statements { try db.execute(sql: statement) }
            }
            try queue.close()
        case .postgres:
            try await withClient(location.address) { client in
                for statement in statements { try await client.query(PostgresQuery(unsafeSQL: statement)) }
            }
        }
    }

    static func execute(_ statement: String, at location: TestStore) async throws {
        try await execute([statement], at: location)
    }

    /// The integers of the first column of `query`'s rows.
    static func integers(_ query: String, at location: TestStore) async throws -> [Int] {
        switch location.kind {
        case .memory:
            preconditionFailure("an in-memory store has no SQL")
        case .sqlite:
            let queue = try DatabaseQueue(path: location.address + "/aesel.sqlite")
            defer { try? queue.close() }
            return try await queue.read { db in try Int.fetchAll(db, sql: query) }
        case .postgres:
            return try await withClient(location.address) { client in
                var values: [Int] = []
                for try await value in try await client.query(PostgresQuery(unsafeSQL: query)).decode(Int.self) { values.append(value) }
                return values
            }
        }
    }

    /// Opens the location's store counting into `metrics`.
    static func open(_ location: TestStore, metrics: any MetricsFactory) async throws -> any AeselStore {
        switch location.kind {
        case .memory: InMemoryStore()
        case .sqlite: try await SQLiteStore.open(dataFolder: location.address, metricsFactory: metrics)
        case .postgres: try await PostgresStore(url: location.address, metricsFactory: metrics)
        }
    }

    /// Runs `body` with a client of its own, whose run task ends with it.
    private static func withClient<Result: Sendable>(_ url: String, _ body: @Sendable (PostgresClient) async throws -> Result) async throws -> Result {
        let client = PostgresClient(configuration: try PostgresStore.configuration(url: url))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            let result = try await body(client)
            group.cancelAll()
            return result
        }
    }
}
