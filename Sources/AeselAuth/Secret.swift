import AeselModel
import Crypto
import Foundation

/// Secrets: made from the system's generator, compared in constant time, never printed by a
/// description.
public enum Secret {
    /// The fewest bytes a token or cluster secret may have.
    public static let minimumBytes = 16

    /// `bytes` random bytes, base64url without padding (43 characters for 32 bytes).
    public static func generate(bytes: Int = 32) -> String {
        let key = SymmetricKey(size: SymmetricKeySize(bitCount: bytes * 8))
        return key.withUnsafeBytes { base64URL(Data($0)) }
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Whether `a` and `b` are equal, in a time that depends on neither: both are hashed first, so the
    /// comparison runs over 32 bytes whatever their lengths.
    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let left = Array(SHA256.hash(data: Data(a.utf8)))
        let right = Array(SHA256.hash(data: Data(b.utf8)))
        var difference: UInt8 = 0
        for index in 0..<left.count { difference |= left[index] ^ right[index] }
        return difference == 0
    }

    /// The secret in the file at `path`, without surrounding white space.
    static func read(path: String, key: String) throws -> String {
        guard let contents = FileManager.default.contents(atPath: path) else {
            throw AuthError(.unusable, "\(key): cannot read \(path)")
        }
        return String(decoding: contents, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Refuses a secret shorter than ``minimumBytes``.
    static func checkStrength(_ secret: String, key: String) throws {
        guard secret.utf8.count >= minimumBytes else {
            throw AuthError(.unusable, "\(key): a secret needs at least \(minimumBytes) bytes (make one with `aesel secret`)")
        }
    }
}

/// The cluster's shared secret: carried on the cluster's own calls in `Aesel-Cluster-Secret`.
public struct ClusterSecret: Sendable, CustomStringConvertible {
    /// The header the cluster's own calls carry it in.
    public static let headerName = "Aesel-Cluster-Secret"

    public let value: String

    /// - Throws: `AuthError.unusable` when shorter than ``Secret/minimumBytes``.
    public init(_ value: String) throws {
        try Secret.checkStrength(value, key: "cluster.secret")
        self.value = value
    }

    public func matches(_ presented: String) -> Bool {
        Secret.constantTimeEqual(value, presented)
    }

    /// Never the secret itself.
    public var description: String { "ClusterSecret(redacted)" }
}
