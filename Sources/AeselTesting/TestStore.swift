import AeselStore
import AeselStorePostgres
import AeselStoreSQLite
import Foundation

/// The back ends that must pass the store contract.
package enum StoreKind: String, CaseIterable, Sendable {
    case memory
    case sqlite
    case postgres

    /// The ones a server process can open (`aesel serve` has no in-memory store).
    package static let durable: [StoreKind] = [.sqlite, .postgres]
}

/// Why a test could not set up what it needs (a store, a broker, a server).
package struct TestSetupError: Error, CustomStringConvertible {
    package var description: String

    package static let missingPostgresURL = TestSetupError(
        description: """
            AESEL_TEST_POSTGRES_URL is not set, so the PostgreSQL contract tests cannot run. Run scripts/test.sh, \
            or start a server with `scripts/postgres.sh start DIR PORT` and export the URL it prints.
            """
    )
}

/// One isolated store of a back end: rows in memory, a temporary folder (SQLite) or a database of its own
/// (PostgreSQL), which a test can open several times and which is removed afterwards.
package struct TestStore: Sendable {
    package let kind: StoreKind
    /// The SQLite data folder or the PostgreSQL URL (empty in memory): where a test can reach the rows
    /// without the store.
    package let address: String
    package let open: @Sendable () async throws -> any AeselStore
    package let remove: @Sendable () async throws -> Void

    package static func make(_ kind: StoreKind) async throws -> TestStore {
        switch kind {
        case .memory:
            let rows = InMemoryStore()
            return TestStore(kind: kind, address: "", open: { rows.reopened() }, remove: {})
        case .sqlite:
            let folder = NSTemporaryDirectory() + "aesel-store-\(UUID().uuidString)"
            return TestStore(
                kind: kind,
                address: folder,
                open: { try await SQLiteStore.open(dataFolder: folder) },
                remove: { try? FileManager.default.removeItem(atPath: folder) }
            )
        case .postgres:
            let (url, remove) = try await postgresDatabase()
            return TestStore(kind: kind, address: url, open: { try await PostgresStore(url: url) }, remove: remove)
        }
    }

    /// A new, empty database on the test PostgreSQL server: its URL, and how to drop it.
    package static func postgresDatabase() async throws -> (url: String, remove: @Sendable () async throws -> Void) {
        guard let adminURL = ProcessInfo.processInfo.environment["AESEL_TEST_POSTGRES_URL"], !adminURL.isEmpty else {
            throw TestSetupError.missingPostgresURL
        }
        let name = "aesel_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        guard var components = URLComponents(string: adminURL) else {
            throw TestSetupError(description: "AESEL_TEST_POSTGRES_URL is not a URL: \(adminURL)")
        }
        components.path = "/" + name
        guard let url = components.string else {
            throw TestSetupError(description: "cannot name database \(name) in \(adminURL)")
        }
        try await PostgresStore.createDatabase(name, adminURL: adminURL)
        return (url, { try await PostgresStore.dropDatabase(name, adminURL: adminURL) })
    }
}

/// Runs `body` with a fresh location, removed afterwards whether or not `body` throws.
package func withTestStore(_ kind: StoreKind, _ body: (TestStore) async throws -> Void) async throws {
    let location = try await TestStore.make(kind)
    try await withCleanUp(location.remove) { try await body(location) }
}

/// Runs `body` with a fresh, empty store, closed and removed afterwards.
package func withStore(_ kind: StoreKind, _ body: (any AeselStore) async throws -> Void) async throws {
    try await withTestStore(kind) { location in
        let store = try await location.open()
        try await withCleanUp({ try await store.close() }) { try await body(store) }
    }
}

/// Runs `body`, then `cleanUp` even when `body` throws: then `body`'s error is the one thrown.
private func withCleanUp(_ cleanUp: () async throws -> Void, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch {
        try? await cleanUp()
        throw error
    }
    try await cleanUp()
}
