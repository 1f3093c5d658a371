/// What a caller may do. `admin` reaches everything (scenes, pairs, the cluster's routes); `application`
/// only the scenes it is granted; `cluster` is the cluster's own calls (announcements, probes, the Cache
/// API, forwarding), which reach everything as an admin does.
public enum Role: String, Sendable, Codable, CaseIterable {
    case admin, application, cluster
}

/// The scenes an application credential is granted: exact keys, and `prefix*` for every key that starts
/// with `prefix` (`*` alone grants every scene).
public struct SceneGrants: Sendable, Equatable, Codable {
    public private(set) var patterns: [String]
    private var exact: Set<String> = []
    private var prefixes: [String] = []

    public init(_ patterns: [String]) {
        self.patterns = patterns
        for pattern in patterns {
            if pattern.hasSuffix("*") { prefixes.append(String(pattern.dropLast())) } else { exact.insert(pattern) }
        }
    }

    public func allows(_ sceneKey: String) -> Bool {
        exact.contains(sceneKey) || prefixes.contains { sceneKey.hasPrefix($0) }
    }

    public init(from decoder: any Decoder) throws {
        self.init(try [String](from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        try patterns.encode(to: encoder)
    }

    public static func == (lhs: SceneGrants, rhs: SceneGrants) -> Bool { lhs.patterns == rhs.patterns }
}

/// An authenticated caller: who (a token's subject, an API key's name, `cluster`), its role and grants.
public struct Principal: Sendable, Equatable {
    public var subject: String
    public var role: Role
    public var scenes: SceneGrants

    public init(subject: String, role: Role, scenes: SceneGrants = SceneGrants([])) {
        self.subject = subject
        self.role = role
        self.scenes = scenes
    }

    /// The cluster's own calls, authenticated by the cluster secret.
    public static let cluster = Principal(subject: "cluster", role: .cluster)

    /// Whether the caller reaches every scene and the routes that are no scene's (pairs, the Cache API,
    /// metrics).
    public var isPrivileged: Bool { role != .application }

    public func mayReach(scene sceneKey: String) -> Bool {
        isPrivileged || scenes.allows(sceneKey)
    }
}
