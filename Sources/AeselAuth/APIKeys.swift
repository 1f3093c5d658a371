import AeselModel
import Crypto
import Foundation

/// One API key as the keys file holds it: its SHA-256 (never the key), a name for logs, its role and
/// grants.
public struct APIKeyEntry: Sendable, Codable, Equatable {
    public var name: String
    /// `sha256:` and the key's SHA-256 in lowercase hex.
    public var hash: String
    public var role: Role
    public var scenes: [String]?

    public init(name: String, key: String, role: Role, scenes: [String] = []) {
        self.name = name
        hash = Self.hash(of: key)
        self.role = role
        self.scenes = scenes.isEmpty ? nil : scenes
    }

    public static func hash(of key: String) -> String {
        "sha256:" + SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    var principal: Principal { Principal(subject: name, role: role, scenes: SceneGrants(scenes ?? [])) }
}

/// The deployment's API keys, from a JSON file: `{"keys":[{"name":…,"hash":"sha256:…","role":…,"scenes":[…]}]}`.
/// A presented key is hashed and looked up by its hash, so the file never holds a key and a lookup
/// compares no secret byte by byte.
public struct APIKeyTable: Sendable {
    private struct File: Codable {
        var keys: [APIKeyEntry]
    }

    /// The prefix of every key `aesel api-key` makes, so a key is known as one in a log or a leak scan.
    public static let keyPrefix = "aesel_"

    private let byHash: [String: APIKeyEntry]

    public init(_ entries: [APIKeyEntry]) {
        byHash = Dictionary(entries.map { ($0.hash, $0) }) { first, _ in first }
    }

    public var count: Int { byHash.count }

    /// - Throws: `AuthError.unusable` for a file that cannot be read or parsed.
    public init(path: String) throws {
        guard let contents = FileManager.default.contents(atPath: path) else {
            throw AuthError(.unusable, "auth.api.keys.file: cannot read \(path)")
        }
        do {
            self.init(try JSONDecoder().decode(File.self, from: contents).keys)
        } catch {
            throw AuthError(.unusable, "auth.api.keys.file: \(path) is not {\"keys\":[{\"name\",\"hash\",\"role\",\"scenes\"}]}", underlyingError: error)
        }
    }

    /// The caller a key belongs to, or nil.
    public func principal(forKey key: String) -> Principal? {
        byHash[APIKeyEntry.hash(of: key)]?.principal
    }

    /// A new key: ``keyPrefix`` and 32 random bytes.
    public static func generateKey() -> String {
        keyPrefix + Secret.generate(bytes: 32)
    }

    /// Adds `entry` to the keys file at `path`, creating it if it is missing; the file is left readable by
    /// its owner only.
    public static func append(_ entry: APIKeyEntry, toFileAt path: String) throws {
        var file = File(keys: [])
        if let contents = FileManager.default.contents(atPath: path), !contents.isEmpty {
            file = try JSONDecoder().decode(File.self, from: contents)
        }
        guard !file.keys.contains(where: { $0.name == entry.name }) else {
            throw AuthError(.unusable, "\(path) already has a key named \(entry.name)")
        }
        file.keys.append(entry)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(file)
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        // The hashes are no secret, but the names and grants are the deployment's own.
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
    }
}
