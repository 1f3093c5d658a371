import AeselModel
public import Configuration

extension AccessControl {
    /// The access control from `reader`. Secrets are read from their files here, so a missing file or a
    /// short secret stops the process at start; no secret is ever logged.
    ///
    /// ## Configuration keys
    /// - `auth.token.secret` (string, secret) or `auth.token.secret.file` (a file holding it): the key
    ///   bearer tokens are signed with (HS256), at least 16 bytes; `aesel secret` makes one.
    /// - `auth.api.keys.file` (string): the API keys file (``APIKeyTable``), kept by `aesel api-key`.
    /// - `cluster.secret` (string, secret) or `cluster.secret.file`: the secret of the cluster's own calls,
    ///   at least 16 bytes, the same in every process of the cluster.
    /// - `metrics.open` (bool, default false): `/metrics` without credentials.
    /// - `insecure` (bool, default false): start although protected mode finds something missing.
    public static func load(reader: ConfigReader) async throws -> AccessControl {
        func secret(_ key: String) throws -> String? {
            if let value = reader.string(forKey: ConfigKey(key), isSecret: true) { return value }
            guard let path = reader.string(forKey: ConfigKey(key + ".file")) else { return nil }
            return try Secret.read(path: path, key: key + ".file")
        }
        do {
            let tokenSecret = try secret("auth.token.secret")
            return AccessControl(
                tokens: try await tokenSecret.asyncMap { try await TokenAuthority(secret: $0) },
                apiKeys: try reader.string(forKey: "auth.api.keys.file").map { try APIKeyTable(path: $0) },
                clusterSecret: try secret("cluster.secret").map { try ClusterSecret($0) },
                metricsOpen: reader.bool(forKey: "metrics.open", default: false),
                insecure: reader.bool(forKey: "insecure", default: false))
        } catch let error as AuthError {
            throw ConfigurationError(key: "", reason: error.message)
        }
    }
}

extension Optional {
    fileprivate func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
