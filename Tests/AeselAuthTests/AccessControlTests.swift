import AeselAuth
import AeselModel
import Foundation
import Logging
import Testing

@Suite("Bearer tokens, API keys, the cluster secret and protected mode")
struct AccessControlTests {
    static let secret = "a-token-secret-of-32-bytes-000000"

    static func access(apiKeys: [APIKeyEntry] = [], clusterSecret: String? = nil) async throws -> AccessControl {
        AccessControl(
            tokens: try await TokenAuthority(secret: secret), apiKeys: APIKeyTable(apiKeys),
            clusterSecret: try clusterSecret.map { try ClusterSecret($0) })
    }

    static func token(_ role: Role, scenes: [String] = [], expires: Date = Date(timeIntervalSinceNow: 60), secret: String = secret) async throws -> String {
        try await TokenAuthority(secret: secret).issue(AccessTokenClaims(subject: "tester", expires: expires, role: role, scenes: scenes))
    }

    @Test("A token under the secret names its subject, role and grants")
    func validToken() async throws {
        let caller = try await Self.access().authenticate(authorization: "Bearer " + Self.token(.application, scenes: ["lab"]), apiKey: nil, clusterSecret: nil)
        #expect(caller == Principal(subject: "tester", role: .application, scenes: SceneGrants(["lab"])))
        #expect(caller.mayReach(scene: "lab"))
        #expect(!caller.mayReach(scene: "lab-2"))
        #expect(!caller.isPrivileged)
    }

    @Test("An expired token, one signed with another secret, a tampered one and one of an unknown role are invalid")
    func invalidTokens() async throws {
        let access = try await Self.access()
        let expired = try await Self.token(.admin, expires: Date(timeIntervalSinceNow: -5))
        let foreign = try await Self.token(.admin, secret: "another-secret-of-at-least-16-bytes")
        let good = try await Self.token(.application, scenes: ["lab"])
        // The payload swapped for an admin's, the signature kept.
        let parts = good.split(separator: ".")
        let adminPayload = try await Self.token(.admin).split(separator: ".")[1]
        let tampered = [parts[0], adminPayload, parts[2]].joined(separator: ".")
        var unknownRole = AccessTokenClaims(subject: "x", expires: Date(timeIntervalSinceNow: 60), role: .admin)
        unknownRole.role = "root"
        let root = try await TokenAuthority(secret: Self.secret).issue(unknownRole)
        for token in [expired, foreign, tampered, root, "not-a-jwt", ""] {
            await #expect(throws: AuthError(.invalid, "")) {
                try await access.authenticate(authorization: "Bearer " + token, apiKey: nil, clusterSecret: nil)
            }
        }
        await #expect(throws: AuthError(.invalid, "")) {
            try await access.authenticate(authorization: "Basic dXNlcjpwYXNz", apiKey: nil, clusterSecret: nil)
        }
        await #expect(throws: AuthError(.missing, "")) {
            try await access.authenticate(authorization: nil, apiKey: nil, clusterSecret: nil)
        }
    }

    @Test("Grants: exact keys and prefix*; admin and cluster reach every scene")
    func grants() {
        let grants = SceneGrants(["lobby", "lab-*"])
        #expect(grants.allows("lobby"))
        #expect(!grants.allows("lobby-2"))
        #expect(grants.allows("lab-"))
        #expect(grants.allows("lab-7"))
        #expect(!grants.allows("la"))
        #expect(!grants.allows("xlab-7"))
        #expect(SceneGrants(["*"]).allows("anything"))
        #expect(!SceneGrants([]).allows("anything"))
        for role in [Role.admin, .cluster] {
            #expect(Principal(subject: "s", role: role).mayReach(scene: "anything"))
        }
    }

    @Test("A secret shorter than 16 bytes is refused, for tokens and the cluster")
    func shortSecrets() async throws {
        await #expect(throws: AuthError(.unusable, "")) { try await TokenAuthority(secret: "fifteen-bytes!!") }
        #expect(throws: AuthError(.unusable, "")) { try ClusterSecret("fifteen-bytes!!") }
        _ = try ClusterSecret("sixteen-bytes!!!")
        #expect(Secret.generate().utf8.count == 43)
        #expect(Secret.generate() != Secret.generate())
    }

    @Test("The API keys file holds hashes only; a key is found by its hash, in the header or as a bearer token")
    func apiKeyFile() async throws {
        let path = NSTemporaryDirectory() + "aesel-keys-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let appKey = APIKeyTable.generateKey()
        let adminKey = APIKeyTable.generateKey()
        try APIKeyTable.append(APIKeyEntry(name: "app", key: appKey, role: .application, scenes: ["lab-*"]), toFileAt: path)
        try APIKeyTable.append(APIKeyEntry(name: "ops", key: adminKey, role: .admin), toFileAt: path)
        #expect(throws: AuthError(.unusable, "")) {
            try APIKeyTable.append(APIKeyEntry(name: "ops", key: APIKeyTable.generateKey(), role: .admin), toFileAt: path)
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!text.contains(appKey) && !text.contains(adminKey))
        #expect(text.contains(APIKeyEntry.hash(of: appKey)))
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) == 0o600)

        let access = AccessControl(apiKeys: try APIKeyTable(path: path))
        #expect(access.requiresCredentials)
        let app = try await access.authenticate(authorization: nil, apiKey: appKey, clusterSecret: nil)
        #expect(app.subject == "app" && app.role == .application && app.mayReach(scene: "lab-1") && !app.mayReach(scene: "lobby"))
        let ops = try await access.authenticate(authorization: "Bearer " + adminKey, apiKey: nil, clusterSecret: nil)
        #expect(ops.role == .admin)
        await #expect(throws: AuthError(.invalid, "")) {
            try await access.authenticate(authorization: nil, apiKey: APIKeyTable.generateKey(), clusterSecret: nil)
        }
        // Without a token secret, a bearer that is no API key is refused.
        await #expect(throws: AuthError(.invalid, "")) {
            try await access.authenticate(authorization: "Bearer " + Self.token(.admin), apiKey: nil, clusterSecret: nil)
        }
        let broken = path + ".broken"
        try Data("{\"keys\": 3}".utf8).write(to: URL(fileURLWithPath: broken))
        defer { try? FileManager.default.removeItem(atPath: broken) }
        #expect(throws: AuthError(.unusable, "")) { try APIKeyTable(path: broken) }
        #expect(throws: AuthError(.unusable, "")) { try APIKeyTable(path: path + ".missing") }
    }

    @Test("The cluster secret: right alone is the cluster, wrong is refused even with a good token, right with a token is the token's caller")
    func clusterSecret() async throws {
        let secret = Secret.generate()
        let access = try await Self.access(clusterSecret: secret)
        #expect(try await access.authenticate(authorization: nil, apiKey: nil, clusterSecret: secret) == .cluster)
        let token = try await Self.token(.application, scenes: ["lab"])
        await #expect(throws: AuthError(.invalid, "")) {
            try await access.authenticate(authorization: "Bearer " + token, apiKey: nil, clusterSecret: secret + "x")
        }
        #expect(try await access.authenticate(authorization: "Bearer " + token, apiKey: nil, clusterSecret: secret).role == .application)
        // A process without a cluster secret accepts none.
        await #expect(throws: AuthError(.invalid, "")) {
            try await Self.access().authenticate(authorization: nil, apiKey: nil, clusterSecret: secret)
        }
    }

    @Test("Secrets compare equal only when equal, whatever their lengths")
    func constantTimeComparison() {
        #expect(Secret.constantTimeEqual("abcdefghijklmnop", "abcdefghijklmnop"))
        #expect(!Secret.constantTimeEqual("abcdefghijklmnop", "abcdefghijklmnoq"))
        #expect(!Secret.constantTimeEqual("abcdefghijklmnop", "abcdefghijklmnopq"))
        #expect(!Secret.constantTimeEqual("", "a"))
        #expect(Secret.constantTimeEqual("", ""))
        #expect(!"\(try! ClusterSecret("sixteen-bytes!!!"))".contains("sixteen"))
    }

    @Test("Protected mode: serve on loopback runs open; elsewhere, and every cluster process, needs what it lacks or --insecure")
    func protectedMode() async throws {
        let logger = Logger(label: "test")
        let serveLoopback = ProtectedMode.Process(command: "serve", host: "127.0.0.1", inCluster: false, eventsSealed: false, mayRunOpenOnLoopback: true)
        #expect(try ProtectedMode.check(serveLoopback, access: .open, logger: logger) == .openOnLoopback)

        var serveWide = serveLoopback
        serveWide.host = "0.0.0.0"
        #expect(Self.refusal { try ProtectedMode.check(serveWide, access: .open, logger: logger) }.contains("credentials: a token secret or API keys"))
        let tokens = AccessControl(tokens: try await TokenAuthority(secret: Self.secret))
        let unsealed = Self.refusal { try ProtectedMode.check(serveWide, access: tokens, logger: logger) }
        #expect(unsealed.contains("events are not sealed") && unsealed.contains("--insecure") && !unsealed.contains("credentials"), "\(unsealed)")
        serveWide.eventsSealed = true
        #expect(try ProtectedMode.check(serveWide, access: tokens, logger: logger) == .protected)

        let pair = ProtectedMode.Process(command: "pair", host: "127.0.0.1", inCluster: true, eventsSealed: true, mayRunOpenOnLoopback: false)
        #expect(Self.refusal { try ProtectedMode.check(pair, access: tokens, logger: logger) }.contains("aesel pair does not start without a cluster secret"))
        var insecure = AccessControl.open
        insecure.insecure = true
        #expect(
            try ProtectedMode.check(pair, access: insecure, logger: logger)
                == .insecure(missing: ["credentials: a token secret or API keys (--token-secret-file, --api-keys-file)", "a cluster secret (--cluster-secret-file)"]))
        let adrestia = ProtectedMode.Process(command: "adrestia", host: "127.0.0.1", inCluster: true, eventsSealed: nil, mayRunOpenOnLoopback: false)
        var complete = tokens
        complete.clusterSecret = try ClusterSecret(Secret.generate())
        #expect(try ProtectedMode.check(adrestia, access: complete, logger: logger) == .protected)
    }
}

extension AccessControlTests {
    /// The message of the configuration error `body` throws; the test fails if it throws none.
    static func refusal(_ body: () throws -> Void) -> String {
        #expect(throws: ConfigurationError.self) { try body() }?.message ?? ""
    }
}
