import AeselModel
import Foundation
import JWTKit

/// The claims of an Aesel bearer token: who (`sub`), until when (`exp`), with which role, and for an
/// application the scenes it is granted (`scenes`: keys and `prefix*`).
public struct AccessTokenClaims: JWTPayload {
    public var sub: SubjectClaim
    public var exp: ExpirationClaim
    public var role: String
    public var scenes: [String]?

    public init(subject: String, expires: Date, role: Role, scenes: [String] = []) {
        sub = SubjectClaim(value: subject)
        exp = ExpirationClaim(value: expires)
        self.role = role.rawValue
        self.scenes = scenes.isEmpty ? nil : scenes
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
        guard Role(rawValue: role) != nil else { throw AuthError(.invalid, "the token's role \(role) is not admin, application or cluster") }
    }

    var principal: Principal {
        Principal(subject: sub.value, role: Role(rawValue: role) ?? .application, scenes: SceneGrants(scenes ?? []))
    }
}

/// Signs and verifies bearer tokens: JWTs, HS256 under the deployment's token secret.
public struct TokenAuthority: Sendable, CustomStringConvertible {
    private let keys: JWTKeyCollection

    /// - Throws: `AuthError.unusable` for a secret shorter than ``Secret/minimumBytes``.
    public init(secret: String) async throws {
        try Secret.checkStrength(secret, key: "auth.token.secret")
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.keys = keys
    }

    public func issue(_ claims: AccessTokenClaims) async throws -> String {
        try await keys.sign(claims)
    }

    /// The token's caller.
    /// - Throws: `AuthError.invalid` for a token that is malformed, signed otherwise, expired, or of an
    ///   unknown role.
    public func verify(_ token: String) async throws -> Principal {
        do {
            return try await keys.verify(token, as: AccessTokenClaims.self).principal
        } catch let error as AuthError {
            throw error
        } catch {
            throw AuthError(.invalid, "the bearer token does not verify", underlyingError: error)
        }
    }

    public var description: String { "TokenAuthority(redacted)" }
}
