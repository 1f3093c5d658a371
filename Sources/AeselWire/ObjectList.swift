public import AeselModel

/// CLyman's object list envelope (reference 1.7).
public struct ObjectList: Codable, Sendable {
    public var messageType: Int?
    public var errorCode: ErrorCode?
    public var errorMessage: String?
    public var transactionID: String?
    public var numRecords: Int?
    public var objects: [ObjectJSON]?

    enum CodingKeys: String, CodingKey {
        case messageType = "msg_type"
        case errorCode = "err_code"
        case errorMessage = "err_msg"
        case transactionID = "transaction_id"
        case numRecords = "num_records"
        case objects
    }

    public init(
        messageType: Int? = nil,
        errorCode: ErrorCode? = nil,
        errorMessage: String? = nil,
        transactionID: String? = nil,
        numRecords: Int? = nil,
        objects: [ObjectJSON]? = nil
    ) {
        self.messageType = messageType
        self.errorCode = errorCode
        self.errorMessage = errorMessage
        self.transactionID = transactionID
        self.numRecords = numRecords
        self.objects = objects
    }

    public static func response(_ messageType: ObjectMessageType, objects: [ObjectJSON], transactionID: String? = nil) -> ObjectList {
        ObjectList(
            messageType: messageType.rawValue,
            errorCode: .noError,
            transactionID: transactionID,
            numRecords: objects.count,
            objects: objects
        )
    }
}

/// CLyman's `msg_type` codes for objects (reference 1.1).
public enum ObjectMessageType: Int, Sendable {
    case create = 0
    case update = 1
    case get = 2
    case delete = 3
    case query = 4
}

/// One object as JSON (reference 1.2). Unlike the original, `parent` and `asset_sub_id` are written back.
public struct ObjectJSON: Codable, Sendable, Equatable {
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
    public var actions: [ActionJSON]?

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
        actions = []
    }
}

/// An animation action. Actions arrive with the transactions issue; until then they are accepted and
/// ignored, and objects are written with `"actions": []`.
public struct ActionJSON: Codable, Sendable, Equatable {
    public var name: String?
}
