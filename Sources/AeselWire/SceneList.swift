public import AeselModel

/// The scene list envelope of CrazyIvan (reference 3.2), used for scenes and registration.
///
/// Every field is optional on input; unknown fields are ignored. On output, fields that are `nil` are left
/// out, as the original leaves out unset fields.
public struct SceneList: Codable, Sendable {
    public var messageType: Int?
    public var errorCode: ErrorCode?
    public var errorMessage: String?
    public var transactionID: String?
    public var operation: Int?
    public var numRecords: Int?
    public var startRecord: Int?
    public var eventDestinationHost: String?
    public var eventDestinationPort: Int?
    /// Sealed events (registration answers only): `sealed`, with the device's new session key.
    public var eventSecurity: String?
    public var sessionKeyID: UInt64?
    /// The 32-byte session secret, base64.
    public var sessionKey: String?
    /// The original's AES-256-CBC mode (reference 2.5): what devices encrypt with, and decrypt with.
    public var encryptionKey: String?
    public var encryptionIV: String?
    public var encryptionPassword: String?
    public var encryptionSalt: String?
    public var decryptionKey: String?
    public var decryptionIV: String?
    public var decryptionPassword: String?
    public var decryptionSalt: String?
    public var scenes: [SceneJSON]?

    enum CodingKeys: String, CodingKey {
        case messageType = "msg_type"
        case errorCode = "err_code"
        case errorMessage = "err_msg"
        case transactionID = "transaction_id"
        case operation
        case numRecords = "num_records"
        case startRecord = "start_record"
        case eventDestinationHost = "event_destination_host"
        case eventDestinationPort = "event_destination_port"
        case eventSecurity = "event_security"
        case sessionKeyID = "session_key_id"
        case sessionKey = "session_key"
        case encryptionKey = "encryption_key"
        case encryptionIV = "encryption_iv"
        case encryptionPassword = "encryption_password"
        case encryptionSalt = "encryption_salt"
        case decryptionKey = "decryption_key"
        case decryptionIV = "decryption_iv"
        case decryptionPassword = "decryption_password"
        case decryptionSalt = "decryption_salt"
        case scenes
    }

    public init(
        messageType: Int? = nil,
        errorCode: ErrorCode? = nil,
        errorMessage: String? = nil,
        transactionID: String? = nil,
        numRecords: Int? = nil,
        startRecord: Int? = nil,
        scenes: [SceneJSON]? = nil
    ) {
        self.messageType = messageType
        self.errorCode = errorCode
        self.errorMessage = errorMessage
        self.transactionID = transactionID
        self.numRecords = numRecords
        self.startRecord = startRecord
        self.scenes = scenes
    }

    /// A successful response carrying `scenes`.
    public static func response(_ messageType: SceneMessageType, scenes: [SceneJSON], transactionID: String? = nil) -> SceneList {
        SceneList(
            messageType: messageType.rawValue,
            errorCode: .noError,
            transactionID: transactionID,
            numRecords: scenes.count,
            startRecord: 0,
            scenes: scenes
        )
    }
}

/// CrazyIvan's `msg_type` codes (reference 3.1).
public enum SceneMessageType: Int, Sendable {
    case create = 0
    case update = 1
    case get = 2
    case delete = 3
    case register = 4
    case deregister = 5
    case align = 6
    /// The Cache API's answers (9 for adding and removing alike, as the original).
    case cache = 9
    /// Not a code of the original's (it answered queries with 2); Aesel's queries answer with it too.
    public static let query = SceneMessageType.get
}

/// One scene as JSON (reference 3.3).
public struct SceneJSON: Codable, Sendable, Equatable {
    public var key: String?
    public var name: String?
    public var description: String?
    public var thumbnail: String?
    public var region: String?
    public var latitude: Double?
    public var longitude: Double?
    public var distance: Double?
    public var active: Bool?
    public var isPublic: Bool?
    public var isPrivate: Bool?
    public var assets: [String]?
    public var tags: [String]?
    public var devices: [DeviceJSON]?

    enum CodingKeys: String, CodingKey {
        case key, name, description, thumbnail, region, latitude, longitude, distance, active
        case isPublic = "public"
        case isPrivate = "private"
        case assets, tags, devices
    }

    public init(key: String? = nil, devices: [DeviceJSON]? = nil) {
        self.key = key
        self.devices = devices
    }

    /// The output form of a stored scene: unset strings and coordinates are left out.
    public init(_ scene: Scene, devices: [DeviceJSON] = []) {
        key = scene.key.nonEmpty
        name = scene.name.nonEmpty
        description = scene.description.nonEmpty
        thumbnail = scene.thumbnail.nonEmpty
        region = scene.region.nonEmpty
        latitude = scene.latitude
        longitude = scene.longitude
        distance = scene.distance
        active = scene.isActive
        isPublic = scene.isPublic
        assets = scene.assets
        tags = scene.tags
        self.devices = devices
    }

    /// The scene this JSON describes, under `key`. `private: true` makes it non-public, as in the original.
    public func scene(key: String) -> Scene {
        Scene(
            key: key,
            name: name ?? "",
            description: description ?? "",
            thumbnail: thumbnail ?? "",
            region: region ?? "",
            latitude: latitude,
            longitude: longitude,
            distance: distance ?? 0,
            isActive: active ?? true,
            isPublic: isPrivate == true ? false : (isPublic ?? true),
            assets: assets ?? [],
            tags: tags ?? []
        )
    }
}

/// A device inside a scene's `devices` list (reference 3.5).
public struct DeviceJSON: Codable, Sendable, Equatable {
    public var key: String?
    public var hostname: String?
    public var port: Int?
    public var connectionString: String?
    /// Aesel extension: the format the device receives events in, `json` (default) or `binary`.
    public var format: EventFormat?
    public var transform: DeviceTransformJSON?

    enum CodingKeys: String, CodingKey {
        case key, hostname, port
        case connectionString = "connection_string"
        case format, transform
    }

    public init(
        key: String? = nil,
        hostname: String? = nil,
        port: Int? = nil,
        connectionString: String? = nil,
        format: EventFormat? = nil,
        transform: DeviceTransformJSON? = nil
    ) {
        self.key = key
        self.hostname = hostname
        self.port = port
        self.connectionString = connectionString
        self.format = format
        self.transform = transform
    }

    public init(_ device: Device) {
        key = device.key
        hostname = device.hostname
        port = device.port
        connectionString = device.connectionString.nonEmpty
        format = device.format
        transform = DeviceTransformJSON(device.transform)
    }
}

/// `{"translation":[x,y,z],"rotation":[x,y,z]}`, rotation in radians.
public struct DeviceTransformJSON: Codable, Sendable, Equatable {
    public var translation: [Double]?
    public var rotation: [Double]?

    enum CodingKeys: String, CodingKey {
        case translation, rotation
    }

    public init(translation: [Double]?, rotation: [Double]?) {
        self.translation = translation
        self.rotation = rotation
    }

    /// Each array, when given, holds exactly x, y and z: any other length is refused (400 with err_code 110)
    /// rather than read as zeros, which would silently put the device at the origin.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        translation = try container.decodeIfPresent([Double].self, forKey: .translation)
        rotation = try container.decodeIfPresent([Double].self, forKey: .rotation)
        for (values, key) in [(translation, CodingKeys.translation), (rotation, CodingKeys.rotation)] {
            if let values, values.count != 3 {
                throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "holds \(values.count) numbers, not 3 (x, y, z)")
            }
        }
    }

    public init(_ transform: DeviceTransform) {
        translation = [transform.translation.x, transform.translation.y, transform.translation.z]
        rotation = [transform.rotation.x, transform.rotation.y, transform.rotation.z]
    }

    /// The largest coordinate a pose may have: scene links subtract and compose poses, and the bound keeps
    /// every result finite (an infinity, once stored, could not be answered as JSON).
    public static let maximumCoordinate = 1e12

    /// The pose (a vector left out is zero), or nil when a vector is not three numbers within
    /// ±``maximumCoordinate``.
    public var pose: DeviceTransform? {
        func vector(_ values: [Double]?) -> SIMD3<Double>? {
            guard let values else { return .zero }
            guard values.count == 3, values.allSatisfy({ abs($0) <= Self.maximumCoordinate }) else { return nil }
            return SIMD3(values[0], values[1], values[2])
        }
        guard let translation = vector(translation), let rotation = vector(rotation) else { return nil }
        return DeviceTransform(translation: translation, rotation: rotation)
    }
}

extension String {
    /// `nil` for the empty string: the original writes string fields only when they are non-empty.
    public var nonEmpty: String? { isEmpty ? nil : self }
}
