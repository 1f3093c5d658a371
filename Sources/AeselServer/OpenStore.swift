public import AeselStore
import AeselStorePostgres
import AeselStoreSQLite
public import Logging

/// Where a server process keeps its data: a shared PostgreSQL store when given its URL, else SQLite in
/// the data folder.
public struct StoreLocation: Sendable {
    /// `postgres://user[:password]@host:port/database`, or nil for SQLite.
    public var url: String?
    public var dataFolder: String
    /// PEM: what a `sslmode=verify-ca` or `verify-full` URL without `sslrootcert` trusts (`tls.ca`).
    public var certificateAuthority: String?

    public static let defaultDataFolder = "./aesel-data"

    public init(url: String? = nil, dataFolder: String = StoreLocation.defaultDataFolder, certificateAuthority: String? = nil) {
        self.url = url
        self.dataFolder = dataFolder
        self.certificateAuthority = certificateAuthority
    }

    public func open(logger: Logger) async throws -> any AeselStore {
        guard let url else { return try await SQLiteStore.open(dataFolder: dataFolder) }
        return try await PostgresStore(url: url, certificateAuthority: certificateAuthority, logger: logger)
    }
}

/// Runs `body` on the store at `location`, closed when `body` returns or throws. A service group that
/// `body` runs with the store in it closes it at graceful shutdown, after the services that write to it.
public func withStore<Result>(
    at location: StoreLocation, logger: Logger, _ body: (any AeselStore) async throws -> Result
) async throws -> Result {
    let store = try await location.open(logger: logger)
    do {
        let result = try await body(store)
        try await store.close()
        return result
    } catch {
        try? await store.close()
        throw error
    }
}
