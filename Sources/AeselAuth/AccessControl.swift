import AeselModel
import Foundation

/// Who may call a process's HTTP API: bearer tokens under the token secret, API keys from the keys file,
/// and the cluster secret on the cluster's own calls. Without a token secret and API keys nothing is
/// asked (``requiresCredentials``): that is only allowed where ``ProtectedMode`` says so.
public struct AccessControl: Sendable {
    /// The header an API key may come in; it may also come as a bearer token.
    public static let apiKeyHeaderName = "X-API-Key"

    public var tokens: TokenAuthority?
    public var apiKeys: APIKeyTable?
    /// Sent on this process's calls to the cluster, and accepted on calls to it as ``Role/cluster``.
    public var clusterSecret: ClusterSecret?
    /// `/metrics` answers without credentials.
    public var metricsOpen: Bool
    /// Start although ``ProtectedMode`` finds something missing.
    public var insecure: Bool

    public init(tokens: TokenAuthority? = nil, apiKeys: APIKeyTable? = nil, clusterSecret: ClusterSecret? = nil, metricsOpen: Bool = false, insecure: Bool = false) {
        self.tokens = tokens
        self.apiKeys = apiKeys
        self.clusterSecret = clusterSecret
        self.metricsOpen = metricsOpen
        self.insecure = insecure
    }

    /// Nothing configured: every request is answered.
    public static let open = AccessControl()

    /// Whether requests need a credential: there is a token secret or API keys to check one against.
    public var requiresCredentials: Bool { tokens != nil || apiKeys != nil }

    /// The caller of a request with these headers' values. A cluster secret, when present, must be right;
    /// with it, a client's own credential (a call Adrestia forwards) still decides, and without one the
    /// call is the cluster's.
    /// - Parameters:
    ///   - authorization: the `Authorization` header: `Bearer` and a token or an API key.
    ///   - apiKey: the `X-API-Key` header.
    ///   - clusterSecret: the `Aesel-Cluster-Secret` header.
    /// - Throws: `AuthError` `missing` or `invalid`.
    public func authenticate(authorization: String?, apiKey: String?, clusterSecret presented: String?) async throws -> Principal {
        var fromCluster = false
        if let presented {
            guard let clusterSecret, clusterSecret.matches(presented) else { throw AuthError(.invalid, "the cluster secret is wrong") }
            fromCluster = true
        }
        if let apiKey {
            guard let principal = apiKeys?.principal(forKey: apiKey) else { throw AuthError(.invalid, "the API key is unknown") }
            return principal
        }
        if let authorization {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else { throw AuthError(.invalid, "the Authorization header is not Bearer") }
            let credential = parts[1].trimmingCharacters(in: .whitespaces)
            if credential.hasPrefix(APIKeyTable.keyPrefix) {
                guard let principal = apiKeys?.principal(forKey: credential) else { throw AuthError(.invalid, "the API key is unknown") }
                return principal
            }
            guard let tokens else { throw AuthError(.invalid, "this server takes no bearer tokens, only API keys") }
            return try await tokens.verify(credential)
        }
        if fromCluster { return .cluster }
        throw AuthError(.missing, "credentials are required: Authorization: Bearer <token or API key>, or \(Self.apiKeyHeaderName)")
    }
}
