/// A Bezier handle of an animation curve (reference 1.4).
public struct GraphHandle: Sendable, Hashable, Codable {
    public var leftType: String
    public var leftX: Double
    public var leftY: Double
    public var rightType: String
    public var rightX: Double
    public var rightY: Double

    enum CodingKeys: String, CodingKey {
        case leftType = "left_type", leftX = "left_x", leftY = "left_y"
        case rightType = "right_type", rightX = "right_x", rightY = "right_y"
    }

    public static let none = GraphHandle(leftType: "", leftX: 0, leftY: 0, rightType: "", rightX: 0, rightY: 0)

    public init(leftType: String, leftX: Double, leftY: Double, rightType: String, rightX: Double, rightY: Double) {
        self.leftType = leftType
        self.leftX = leftX
        self.leftY = leftY
        self.rightType = rightType
        self.rightX = rightX
        self.rightY = rightY
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        leftType = try container.decodeIfPresent(String.self, forKey: .leftType) ?? ""
        leftX = try container.decodeIfPresent(Double.self, forKey: .leftX) ?? 0
        leftY = try container.decodeIfPresent(Double.self, forKey: .leftY) ?? 0
        rightType = try container.decodeIfPresent(String.self, forKey: .rightType) ?? ""
        rightX = try container.decodeIfPresent(Double.self, forKey: .rightX) ?? 0
        // The original read right_x into right_y (reference 1.4); Aesel reads each field as itself.
        rightY = try container.decodeIfPresent(Double.self, forKey: .rightY) ?? 0
    }
}

/// A keyframe of an object action: a transform at a frame, with curve handles.
public struct ObjectKeyframe: Sendable, Hashable, Codable {
    public var frame: Int
    public var owner: String
    public var transform: Transform
    /// x, y, z
    public var translationHandle: [GraphHandle]
    /// w, x, y, z
    public var rotationHandle: [GraphHandle]
    /// x, y, z
    public var scaleHandle: [GraphHandle]

    enum CodingKeys: String, CodingKey {
        case frame, owner, transform
        case translationHandle = "translation_handle"
        case rotationHandle = "rotation_handle"
        case scaleHandle = "scale_handle"
    }

    public init(frame: Int, owner: String = "", transform: Transform = .identity, translationHandle: [GraphHandle] = [], rotationHandle: [GraphHandle] = [], scaleHandle: [GraphHandle] = []) {
        self.frame = frame
        self.owner = owner
        self.transform = transform
        self.translationHandle = Self.padded(translationHandle, to: 3)
        self.rotationHandle = Self.padded(rotationHandle, to: 4)
        self.scaleHandle = Self.padded(scaleHandle, to: 3)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            frame: try container.decode(Int.self, forKey: .frame),
            owner: try container.decodeIfPresent(String.self, forKey: .owner) ?? "",
            transform: try container.decodeIfPresent(Transform.self, forKey: .transform) ?? .identity,
            translationHandle: try container.decodeIfPresent([GraphHandle].self, forKey: .translationHandle) ?? [],
            rotationHandle: try container.decodeIfPresent([GraphHandle].self, forKey: .rotationHandle) ?? [],
            scaleHandle: try container.decodeIfPresent([GraphHandle].self, forKey: .scaleHandle) ?? []
        )
    }

    /// Every keyframe carries all 3/4/3 handles, as in the original's output.
    static func padded(_ handles: [GraphHandle], to count: Int) -> [GraphHandle] {
        Array((handles + Array(repeating: .none, count: max(0, count - handles.count))).prefix(count))
    }
}

/// One value of a property keyframe, with its curve handle.
public struct PropertyKeyframeValue: Sendable, Hashable, Codable {
    public var value: Double
    public var handle: GraphHandle

    enum CodingKeys: String, CodingKey {
        case value
    }

    public init(value: Double, handle: GraphHandle = .none) {
        self.value = value
        self.handle = handle
    }

    public init(from decoder: any Decoder) throws {
        value = try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(Double.self, forKey: .value) ?? 0
        handle = try GraphHandle(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(value, forKey: .value)
        try handle.encode(to: encoder)
    }
}

/// A keyframe of a property action: 1 to 4 values at a frame.
public struct PropertyKeyframe: Sendable, Hashable, Codable {
    public var frame: Int
    public var owner: String
    public var values: [PropertyKeyframeValue]

    public init(frame: Int, owner: String = "", values: [PropertyKeyframeValue] = []) {
        self.frame = frame
        self.owner = owner
        self.values = values
    }

    enum CodingKeys: String, CodingKey {
        case frame, owner, values
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        frame = try container.decode(Int.self, forKey: .frame)
        owner = try container.decodeIfPresent(String.self, forKey: .owner) ?? ""
        values = Array((try container.decodeIfPresent([PropertyKeyframeValue].self, forKey: .values) ?? []).prefix(4))
    }
}

/// A named animation action with keyframes, kept sorted by frame (one keyframe per frame).
public struct Action<Keyframe: Sendable & Hashable & Codable & FrameNumbered>: Sendable, Hashable, Codable {
    public var name: String
    public var description: String
    public var owner: String
    public var keyframes: [Keyframe]

    /// At most this many keyframes per action: a bound on the size of a record and of its events.
    public static var maximumKeyframes: Int { 1000 }

    /// Keeps one keyframe per frame (the last given) and sorts them by frame.
    public init(name: String, description: String = "", owner: String = "", keyframes: [Keyframe] = []) {
        self.name = name
        self.description = description
        self.owner = owner
        var byFrame: [Int: Keyframe] = [:]
        for keyframe in keyframes { byFrame[keyframe.frame] = keyframe }
        self.keyframes = byFrame.keys.sorted().map { byFrame[$0]! }
    }

    enum CodingKeys: String, CodingKey {
        case name, description, owner, keyframes
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            name: try container.decode(String.self, forKey: .name),
            description: try container.decodeIfPresent(String.self, forKey: .description) ?? "",
            owner: try container.decodeIfPresent(String.self, forKey: .owner) ?? "",
            keyframes: try container.decodeIfPresent([Keyframe].self, forKey: .keyframes) ?? []
        )
        guard keyframes.count <= Self.maximumKeyframes else {
            throw DecodingError.dataCorruptedError(forKey: .keyframes, in: container, debugDescription: "an action has at most \(Self.maximumKeyframes) keyframes")
        }
    }

    /// Adds the keyframe, replacing one at the same frame.
    public mutating func upsert(_ keyframe: Keyframe) {
        keyframes.removeAll { $0.frame == keyframe.frame }
        keyframes.append(keyframe)
        keyframes.sort { $0.frame < $1.frame }
    }
}

public protocol FrameNumbered {
    var frame: Int { get }
}

extension ObjectKeyframe: FrameNumbered {}
extension PropertyKeyframe: FrameNumbered {}

public typealias ObjectAction = Action<ObjectKeyframe>
public typealias PropertyAction = Action<PropertyKeyframe>
