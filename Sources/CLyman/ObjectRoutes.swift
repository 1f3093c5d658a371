import AeselHTTP
import AeselModel
public import AeselStore
import AeselWire
public import Hummingbird

/// CLyman's object transactions. Through the gateway they sit under `/v1/scene/{scene}`, and the path's
/// scene is the object's scene.
public struct ObjectRoutes: Sendable {
    private let store: any AeselStore
    private let writeBehind: TransformWriteBehind

    public init(store: any AeselStore, writeBehind: TransformWriteBehind) {
        self.store = store
        self.writeBehind = writeBehind
    }

    /// Adds `POST {group}/object` and `GET {group}/object/{objectKey}`; `group` has a `{scene}` parameter.
    public func add<Context: RequestContext>(to group: RouterGroup<Context>) {
        group.post("object") { request, context in
            let sceneKey = try context.parameters.require("scene")
            return try await create(request, sceneKey: sceneKey)
        }
        group.get("object/{objectKey}") { _, context in
            let sceneKey = try context.parameters.require("scene")
            let objectKey = try context.parameters.require("objectKey")
            return try await get(objectKey: objectKey, sceneKey: sceneKey)
        }
    }

    func create(_ request: Request, sceneKey: String) async throws -> Response {
        let list = try await JSONResponse.decode(ObjectList.self, from: request, list: .objects, messageType: ObjectMessageType.create.rawValue)
        guard let requested = list.objects, !requested.isEmpty else {
            throw EnvelopeError(.badRequest, .insufficientData, "the body lists no objects", list: .objects)
        }
        guard try await store.scene(key: sceneKey) != nil else {
            throw EnvelopeError.notFound("no scene \(sceneKey)", list: .objects, messageType: ObjectMessageType.create.rawValue)
        }
        var created: [ObjectJSON] = []
        for json in requested {
            // As in the original, a key in the body is ignored: the server issues keys.
            let object = SceneObject(
                key: KeyGenerator.objectKey(),
                sceneKey: sceneKey,
                name: json.name ?? "",
                type: json.type ?? "",
                subtype: json.subtype ?? "",
                owner: json.owner ?? "",
                parent: json.parent ?? "",
                assetSubID: json.assetSubID ?? "",
                transform: json.transform ?? .identity,
                assets: json.assets ?? []
            )
            try await store.createObject(object)
            created.append(ObjectJSON(object, messageType: .create))
        }
        return try JSONResponse.make(ObjectList.response(.create, objects: created, transactionID: list.transactionID))
    }

    func get(objectKey: String, sceneKey: String) async throws -> Response {
        guard var object = try await store.object(key: objectKey), object.sceneKey == sceneKey else {
            throw EnvelopeError.notFound("no object \(objectKey) in scene \(sceneKey)", list: .objects, messageType: ObjectMessageType.get.rawValue)
        }
        // An event's transform is visible before the write-behind persister stores it.
        if let newest = writeBehind.newest(objectKey: objectKey) {
            object.transform = newest.transform
            object.sequence = max(object.sequence, newest.sequence)
        }
        return try JSONResponse.make(ObjectList.response(.get, objects: [ObjectJSON(object, messageType: .get)]))
    }
}
