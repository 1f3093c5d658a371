/// The wire format a device receives its events in. It chooses at registration; JSON is the default.
public enum EventFormat: String, Sendable, Hashable, Codable {
    case json
    case binary
}

/// A device's pose in a scene: a translation and an intrinsic XYZ Euler rotation in radians.
public struct DeviceTransform: Sendable, Hashable, Codable {
    public var translation: SIMD3<Double>
    public var rotation: SIMD3<Double>

    public static let identity = DeviceTransform(translation: .zero, rotation: .zero)

    public init(translation: SIMD3<Double>, rotation: SIMD3<Double>) {
        self.translation = translation
        self.rotation = rotation
    }
}

/// A user's device registered to a scene, with the UDP address where it receives events.
public struct Device: Sendable, Hashable {
    public var key: String
    /// An IP literal; the fan-out sends to it verbatim.
    public var hostname: String
    public var port: Int
    public var connectionString: String
    public var format: EventFormat
    public var transform: DeviceTransform
    /// The key its events are sealed with (docs/protocol.md, Sealed events); nil when the pair that
    /// registered it ran with plaintext events.
    public var sessionKey: EventSessionKey?

    public init(
        key: String,
        hostname: String,
        port: Int,
        connectionString: String = "",
        format: EventFormat = .json,
        transform: DeviceTransform = .identity,
        sessionKey: EventSessionKey? = nil
    ) {
        self.key = key
        self.hostname = hostname
        self.port = port
        self.connectionString = connectionString
        self.format = format
        self.transform = transform
        self.sessionKey = sessionKey
    }
}

/// A device's session key for sealed events, issued at registration and replaced at each new one. The id
/// names the key in each sealed datagram's clear header; the secret never leaves the store, the pair and
/// the registration answer, and is never logged.
public struct EventSessionKey: Sendable, Hashable, CustomStringConvertible {
    /// Below 2^53, so that every JSON reader takes it exactly.
    public var id: UInt64
    /// 32 random bytes.
    public var secret: [UInt8]

    public static let secretSize = 32
    public static let idRange: ClosedRange<UInt64> = 1...(1 << 53 - 1)

    public init(id: UInt64, secret: [UInt8]) {
        self.id = id
        self.secret = secret
    }

    /// A new key from the system's cryptographic generator (getrandom on Linux).
    public static func generate() -> EventSessionKey {
        var random = SystemRandomNumberGenerator()
        return EventSessionKey(
            id: UInt64.random(in: idRange, using: &random),
            secret: (0..<secretSize).map { _ in UInt8.random(in: .min ... .max, using: &random) })
    }

    /// Never the secret.
    public var description: String { "EventSessionKey(id: \(id))" }
}

/// A group of objects that devices register to.
public struct Scene: Sendable, Hashable {
    public var key: String
    public var name: String
    public var description: String
    public var thumbnail: String
    public var region: String
    public var latitude: Double?
    public var longitude: Double?
    public var distance: Double
    public var isActive: Bool
    public var isPublic: Bool
    public var assets: [String]
    public var tags: [String]

    public init(
        key: String,
        name: String = "",
        description: String = "",
        thumbnail: String = "",
        region: String = "",
        latitude: Double? = nil,
        longitude: Double? = nil,
        distance: Double = 0,
        isActive: Bool = true,
        isPublic: Bool = true,
        assets: [String] = [],
        tags: [String] = []
    ) {
        self.key = key
        self.name = name
        self.description = description
        self.thumbnail = thumbnail
        self.region = region
        self.latitude = latitude
        self.longitude = longitude
        self.distance = distance
        self.isActive = isActive
        self.isPublic = isPublic
        self.assets = assets
        self.tags = tags
    }
}

/// A thing in 3-space that belongs to a scene.
public struct SceneObject: Sendable, Hashable {
    public var key: String
    public var sceneKey: String
    public var name: String
    public var type: String
    public var subtype: String
    public var owner: String
    public var parent: String
    public var assetSubID: String
    public var transform: Transform
    public var assets: [String]
    public var actions: [ObjectAction]
    /// The sequence number of the newest event applied to the transform (0 if none was numbered).
    public var sequence: UInt64

    public init(
        key: String,
        sceneKey: String,
        name: String = "",
        type: String = "",
        subtype: String = "",
        owner: String = "",
        parent: String = "",
        assetSubID: String = "",
        transform: Transform = .identity,
        assets: [String] = [],
        actions: [ObjectAction] = [],
        sequence: UInt64 = 0
    ) {
        self.key = key
        self.sceneKey = sceneKey
        self.name = name
        self.type = type
        self.subtype = subtype
        self.owner = owner
        self.parent = parent
        self.assetSubID = assetSubID
        self.transform = transform
        self.assets = assets
        self.actions = actions
        self.sequence = sequence
    }
}

/// A named value of 1 to 4 numbers, optionally tied to an object (`parent`), animated like an object.
public struct SceneProperty: Sendable, Hashable {
    public static let maximumValues = 4

    public var key: String
    public var sceneKey: String
    public var name: String
    public var parent: String
    public var assetSubID: String
    public var values: [Double]
    public var actions: [PropertyAction]
    public var sequence: UInt64

    public init(
        key: String,
        sceneKey: String,
        name: String = "",
        parent: String = "",
        assetSubID: String = "",
        values: [Double] = [],
        actions: [PropertyAction] = [],
        sequence: UInt64 = 0
    ) {
        self.key = key
        self.sceneKey = sceneKey
        self.name = name
        self.parent = parent
        self.assetSubID = assetSubID
        self.values = Array(values.prefix(Self.maximumValues))
        self.actions = actions
        self.sequence = sequence
    }
}

/// A calibration link between two scenes: `transform` maps coordinates of `from` into `to`.
public struct SceneLink: Sendable, Hashable {
    public var from: String
    public var to: String
    public var transform: DeviceTransform

    public init(from: String, to: String, transform: DeviceTransform) {
        self.from = from
        self.to = to
        self.transform = transform
    }
}
