public import AeselModel

/// An element of a CLyman list envelope, and the name of the list it travels in.
public protocol ListItem: Codable, Sendable {
    static var listName: String { get }
}

/// CLyman's list envelope (reference 1.7): `{"msg_type", "err_code", "err_msg"?, "transaction_id"?,
/// "num_records", "objects"|"properties": [...]}`. Objects and properties differ only in the list's name.
public struct RecordList<Item: ListItem>: Codable, Sendable {
    public var messageType: Int?
    public var errorCode: ErrorCode?
    public var errorMessage: String?
    public var transactionID: String?
    public var numRecords: Int?
    public var items: [Item]?

    struct CodingKeys: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }

        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }

        static var messageType: CodingKeys { CodingKeys(stringValue: "msg_type") }
        static var errorCode: CodingKeys { CodingKeys(stringValue: "err_code") }
        static var errorMessage: CodingKeys { CodingKeys(stringValue: "err_msg") }
        static var transactionID: CodingKeys { CodingKeys(stringValue: "transaction_id") }
        static var numRecords: CodingKeys { CodingKeys(stringValue: "num_records") }
        static var items: CodingKeys { CodingKeys(stringValue: Item.listName) }
    }

    public init(
        messageType: Int? = nil,
        errorCode: ErrorCode? = nil,
        errorMessage: String? = nil,
        transactionID: String? = nil,
        numRecords: Int? = nil,
        items: [Item]? = nil
    ) {
        self.messageType = messageType
        self.errorCode = errorCode
        self.errorMessage = errorMessage
        self.transactionID = transactionID
        self.numRecords = numRecords
        self.items = items
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        messageType = try container.decodeIfPresent(Int.self, forKey: .messageType)
        errorCode = try container.decodeIfPresent(ErrorCode.self, forKey: .errorCode)
        errorMessage = try container.decodeIfPresent(String.self, forKey: .errorMessage)
        transactionID = try container.decodeIfPresent(String.self, forKey: .transactionID)
        numRecords = try container.decodeIfPresent(Int.self, forKey: .numRecords)
        items = try container.decodeIfPresent([Item].self, forKey: .items)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(messageType, forKey: .messageType)
        try container.encodeIfPresent(errorCode, forKey: .errorCode)
        try container.encodeIfPresent(errorMessage, forKey: .errorMessage)
        try container.encodeIfPresent(transactionID, forKey: .transactionID)
        try container.encodeIfPresent(numRecords, forKey: .numRecords)
        try container.encodeIfPresent(items, forKey: .items)
    }

    /// A successful response carrying `items`, with the list's `msg_type` for `operation`.
    public static func response(_ operation: ObjectMessageType, _ items: [Item], transactionID: String? = nil) -> RecordList {
        let code = Item.self == PropertyJSON.self ? operation.propertyCode : operation.rawValue
        return RecordList(messageType: code, errorCode: .noError, transactionID: transactionID, numRecords: items.count, items: items)
    }
}

public typealias ObjectList = RecordList<ObjectJSON>
public typealias PropertyList = RecordList<PropertyJSON>

/// CLyman's `msg_type` codes for objects (reference 1.1).
public enum ObjectMessageType: Int, Sendable {
    case create = 0
    case update = 1
    case get = 2
    case delete = 3
    case query = 4
    case lock = 5
    case unlock = 6
    case assetAdd = 13
    case assetDelete = 14
    case frameCreate = 15
    case frameUpdate = 16
    case frameGet = 17
    case frameDelete = 18
    case actionCreate = 19
    case actionUpdate = 20
    case actionGet = 21
    case actionDelete = 22
}

/// One object as JSON (reference 1.2). Unlike the original, `parent` and `asset_sub_id` are written back.
public struct ObjectJSON: ListItem, Equatable {
    public static let listName = "objects"

    public var messageType: Int?
    public var key: String?
    public var name: String?
    public var scene: String?
    public var type: String?
    public var subtype: String?
    public var owner: String?
    public var parent: String?
    public var assetSubID: String?
    public var transform: Transform?
    public var assets: [String]?
    public var actions: [ObjectAction]?

    enum CodingKeys: String, CodingKey {
        case messageType = "msg_type"
        case key, name, scene, type, subtype, owner, parent
        case assetSubID = "asset_sub_id"
        case transform, assets, actions
    }

    public init(name: String? = nil, scene: String? = nil, transform: Transform? = nil) {
        self.name = name
        self.scene = scene
        self.transform = transform
    }

    public init(_ object: SceneObject, messageType: ObjectMessageType) {
        self.messageType = messageType.rawValue
        key = object.key
        name = object.name.nonEmpty
        scene = object.sceneKey.nonEmpty
        type = object.type.nonEmpty
        subtype = object.subtype.nonEmpty
        owner = object.owner.nonEmpty
        parent = object.parent.nonEmpty
        assetSubID = object.assetSubID.nonEmpty
        transform = object.transform
        assets = object.assets
        actions = object.actions
    }
}

/// One property as JSON (reference 1.5). `values` takes plain numbers, as the original's parser did, or
/// the documented `{"value": n}` objects, which the original silently dropped.
public struct PropertyJSON: ListItem, Equatable {
    public static let listName = "properties"

    public var messageType: Int?
    public var key: String?
    public var name: String?
    public var scene: String?
    public var parent: String?
    public var assetSubID: String?
    public var values: [Double]?
    public var actions: [PropertyAction]?

    enum CodingKeys: String, CodingKey {
        case messageType = "msg_type"
        case key, name, scene, parent
        case assetSubID = "asset_sub_id"
        case values, actions
    }

    public init(name: String? = nil, scene: String? = nil, values: [Double]? = nil) {
        self.name = name
        self.scene = scene
        self.values = values
    }

    public init(_ property: SceneProperty, messageType: ObjectMessageType) {
        self.messageType = messageType.propertyCode
        key = property.key
        name = property.name
        scene = property.sceneKey
        parent = property.parent
        assetSubID = property.assetSubID
        values = property.values
        actions = property.actions
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        messageType = try container.decodeIfPresent(Int.self, forKey: .messageType)
        key = try container.decodeIfPresent(String.self, forKey: .key)
        name = try container.decodeIfPresent(String.self, forKey: .name)
        scene = try container.decodeIfPresent(String.self, forKey: .scene)
        parent = try container.decodeIfPresent(String.self, forKey: .parent)
        assetSubID = try container.decodeIfPresent(String.self, forKey: .assetSubID)
        values = try container.decodeIfPresent([PropertyValueJSON].self, forKey: .values)?.map(\.value)
        actions = try container.decodeIfPresent([PropertyAction].self, forKey: .actions)
        if let values, values.count > SceneProperty.maximumValues {
            throw DecodingError.dataCorruptedError(forKey: .values, in: container, debugDescription: "a property has at most \(SceneProperty.maximumValues) values")
        }
    }
}

/// A property value: a number, or `{"value": number}`.
private struct PropertyValueJSON: Decodable {
    var value: Double

    enum CodingKeys: String, CodingKey {
        case value
    }

    init(from decoder: any Decoder) throws {
        if let number = try? decoder.singleValueContainer().decode(Double.self) {
            value = number
        } else {
            value = try decoder.container(keyedBy: CodingKeys.self).decode(Double.self, forKey: .value)
        }
    }
}

extension ObjectMessageType {
    /// The property code of the same operation (reference 1.1: 8 create, 9 update, 10 get, 11 delete, 12 query).
    public var propertyCode: Int { rawValue + 8 }
}
