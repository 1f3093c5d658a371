import AeselAuth
import Foundation

/// A test deployment's credentials, made once per test process: a token secret, a cluster secret and an
/// API keys file with one admin key, in a folder of their own; servers get the files as options
/// (``serverArguments``), test requests the admin key (``adminHeaders``).
package final class TestCredentials: Sendable {
    package static let shared: TestCredentials = {
        do {
            return try TestCredentials()
        } catch {
            fatalError("cannot write the test credentials: \(error)")
        }
    }()

    package let folder: String
    package let tokenSecret: String
    package let tokenSecretFile: String
    package let clusterSecret: String
    package let clusterSecretFile: String
    package let apiKeysFile: String
    /// An admin API key in ``apiKeysFile``.
    package let adminKey: String

    package init() throws {
        folder = NSTemporaryDirectory() + "aesel-credentials-\(UUID().uuidString.prefix(8).lowercased())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        tokenSecret = Secret.generate()
        clusterSecret = Secret.generate()
        tokenSecretFile = folder + "/token.secret"
        clusterSecretFile = folder + "/cluster.secret"
        apiKeysFile = folder + "/api-keys.json"
        try Data(tokenSecret.utf8).write(to: URL(fileURLWithPath: tokenSecretFile))
        try Data(clusterSecret.utf8).write(to: URL(fileURLWithPath: clusterSecretFile))
        adminKey = APIKeyTable.generateKey()
        try APIKeyTable.append(APIKeyEntry(name: "test-admin", key: adminKey, role: .admin), toFileAt: apiKeysFile)
    }

    /// The options that make a server ask for these credentials and share this cluster secret.
    package var serverArguments: [String] {
        ["--token-secret-file", tokenSecretFile, "--api-keys-file", apiKeysFile, "--cluster-secret-file", clusterSecretFile]
    }

    package var adminHeaders: [String: String] { [AccessControl.apiKeyHeaderName: adminKey] }

    /// A bearer token signed with ``tokenSecret``.
    package func token(role: Role, scenes: [String] = [], subject: String = "test", expires: Date = Date(timeIntervalSinceNow: 3600)) async throws -> String {
        try await TokenAuthority(secret: tokenSecret).issue(AccessTokenClaims(subject: subject, expires: expires, role: role, scenes: scenes))
    }

    /// `Authorization: Bearer` with a token of `role` for `scenes`.
    package func bearerHeaders(role: Role, scenes: [String] = []) async throws -> [String: String] {
        ["Authorization": "Bearer " + (try await token(role: role, scenes: scenes))]
    }
}
