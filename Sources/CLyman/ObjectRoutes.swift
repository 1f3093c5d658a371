import AeselHTTP
import AeselModel
public import AeselStore
public import AeselStream
import AeselWire
import Foundation
public import Hummingbird
import NIOCore

/// CLyman's object transactions (reference 1.7), at `/v1/object/...` and, through the gateway, at
/// `/v1/scene/{scene}/object/...`. There the path's scene is where a create puts its objects (unless
/// they name one) and what a query matches; an object named by key is found by its key alone, whatever
/// scene the path names, as the original's gateway did (it dropped the scene from the path).
///
/// An object's scene need not exist in the store: the original CLyman kept objects apart from CrazyIvan's
/// scenes, and its clients create objects first. Such an object is a member of its scene key on the UDP
/// path all the same; the scene's devices are whoever registers there later.
///
/// `owner` is the lock: a create or update naming a non-empty one takes the lock for that device, as
/// `GET …/lock?device=` would (409/123 while another device holds it); only `DELETE …/lock` releases it.
///
/// Every mutation commits, then emits its event to the scene's devices (reference 2.4).
public struct ObjectRoutes: Sendable {
    private let store: any AeselStore
    private let writeBehind: TransformWriteBehind
    private let locks: ObjectLocks
    private let stream: any ChangeStream
    private let members: SceneMembers

    public init(store: any AeselStore, writeBehind: TransformWriteBehind, locks: ObjectLocks, stream: any ChangeStream, members: SceneMembers) {
        self.store = store
        self.writeBehind = writeBehind
        self.locks = locks
        self.stream = stream
        self.members = members
    }

    /// Adds the object routes to `group` (`/v1`, or `/v1/scene/{scene}` for the gateway's scoped form).
    public func add<Context: RequestContext>(to group: RouterGroup<Context>) {
        let group = group.group().add(middleware: NULParameterRefusal<Context>()).add(middleware: SceneGuard<Context>(list: .objects))
            .add(middleware: RecordSceneGuard<Context>(list: .objects) { [store] key in try await store.object(key: key)?.sceneKey })
        group.post("object") { request, context in
            try await create(request, sceneKey: context.parameters.decodedIfPresent("scene"))
        }
        group.post("object/query") { request, context in
            try await query(request, sceneKey: context.parameters.decodedIfPresent("scene"))
        }
        group.get("object/{key}") { _, context in
            let key = try context.parameters.decoded("key")
            guard let object = try await store.object(key: key) else { throw Self.notFound(key, .get) }
            return try respond(.get, [overlaid(object)])
        }
        group.post("object/{key}") { request, context in
            try await update(request, key: context.parameters.decoded("key"), device: request.uri.queryParameters.get("device"))
        }
        group.delete("object/{key}") { _, context in
            let key = try context.parameters.decoded("key")
            guard let deleted = try await store.deleteObject(key: key) else { throw Self.notFound(key, .delete) }
            locks.set(owner: "", of: deleted.key)
            members.removed(deleted.key, kind: .objectUpdate, from: deleted.sceneKey)
            writeBehind.discard(key: deleted.key)
            emit(.delete, deleted)
            return try respond(.delete, [deleted])
        }
        group.get("object/{key}/lock") { request, context in
            try await lock(key: context.parameters.decoded("key"), device: request.uri.queryParameters.get("device"), locking: true)
        }
        group.delete("object/{key}/lock") { request, context in
            try await lock(key: context.parameters.decoded("key"), device: request.uri.queryParameters.get("device"), locking: false)
        }
        group.put("object/{key}/asset/{asset}") { _, context in
            let asset = try context.parameters.decoded("asset")
            return try await change(context.parameters.decoded("key"), .assetAdd) { object in
                if !object.assets.contains(asset) { object.assets.append(asset) }
            }
        }
        group.delete("object/{key}/asset/{asset}") { _, context in
            let asset = try context.parameters.decoded("asset")
            return try await change(context.parameters.decoded("key"), .assetDelete) { object in
                object.assets.removeAll { $0 == asset }
            }
        }
        ActionRoutes<ObjectKeyframe>(segment: "object", list: .objects, codeOffset: 0) { key, edit in
            try await change(key, edit.messageType, emits: true) { object in
                try edit.apply(to: &object.actions)
            }
        }.add(to: group)
    }

    private func create(_ request: Request, sceneKey: String?) async throws -> Response {
        let type = ObjectMessageType.create
        let list = try await JSONResponse.decode(ObjectList.self, from: request, list: .objects, messageType: type.rawValue)
        guard let requested = list.items, !requested.isEmpty else {
            throw EnvelopeError(.badRequest, .insufficientData, "the body lists no objects", list: .objects, messageType: type.rawValue)
        }
        // Every item is checked before any is created, so that a refused list creates nothing.
        var scenes: [String] = []
        for json in requested {
            guard let scene = json.scene?.nonEmpty ?? sceneKey else {
                throw EnvelopeError(.badRequest, .insufficientData, "an object needs a scene", list: .objects, messageType: type.rawValue)
            }
            try Self.checkLengths(json, type)
            try RequestCaller.require(scene: scene, list: .objects, messageType: type.rawValue)
            scenes.append(scene)
        }
        var created: [SceneObject] = []
        for (json, scene) in zip(requested, scenes) {
            // As in the original, a key in the body is ignored: the server issues keys.
            let object = SceneObject(
                key: KeyGenerator.objectKey(),
                sceneKey: scene,
                name: json.name ?? "",
                type: json.type ?? "",
                subtype: json.subtype ?? "",
                owner: json.owner ?? "",
                parent: json.parent ?? "",
                assetSubID: json.assetSubID ?? "",
                transform: json.transform ?? .identity,
                assets: json.assets ?? [],
                actions: json.actions.map(uniqueActions) ?? []
            )
            try await store.createObject(object)
            members.added(object.key, kind: .objectUpdate, to: object.sceneKey)
            // Its events are likely to follow: have the scene's members ready for the first one.
            members.prefetch(object.sceneKey)
            if !object.owner.isEmpty { locks.set(owner: object.owner, of: object.key) }
            emit(.create, object)
            created.append(object)
        }
        return try respond(.create, created, transactionID: list.transactionID)
    }

    /// A partial update: each field given and non-empty is set; `assets` are appended, as in the original.
    /// While the object is locked, an update naming another `device`, or another `owner`, is refused.
    private func update(_ request: Request, key: String, device: String?) async throws -> Response {
        let type = ObjectMessageType.update
        let list = try await JSONResponse.decode(ObjectList.self, from: request, list: .objects, messageType: type.rawValue)
        guard let json = list.items?.first else {
            throw EnvelopeError(.badRequest, .insufficientData, "the body lists no object", list: .objects, messageType: type.rawValue)
        }
        try Self.checkLengths(json, type)
        // Moving an object takes the right to the scene it moves to, as well as to its own (RecordSceneGuard).
        if let scene = json.scene?.nonEmpty { try RequestCaller.require(scene: scene, list: .objects, messageType: type.rawValue) }
        return try await change(key, type, emits: true, transactionID: list.transactionID) { object in
            if let device, !object.owner.isEmpty, object.owner != device { throw RecordRefusal.locked(by: object.owner) }
            if let owner = json.owner?.nonEmpty {
                guard object.owner.isEmpty || object.owner == owner else { throw RecordRefusal.locked(by: object.owner) }
                object.owner = owner
            }
            if let name = json.name?.nonEmpty { object.name = name }
            if let scene = json.scene?.nonEmpty { object.sceneKey = scene }
            if let value = json.type?.nonEmpty { object.type = value }
            if let value = json.subtype?.nonEmpty { object.subtype = value }
            if let value = json.parent?.nonEmpty { object.parent = value }
            if let value = json.assetSubID?.nonEmpty { object.assetSubID = value }
            if let transform = json.transform { object.transform = transform }
            for asset in json.assets ?? [] where !object.assets.contains(asset) { object.assets.append(asset) }
            if let actions = json.actions { object.actions = uniqueActions(actions) }
        } after: { object in
            if json.scene?.nonEmpty != nil { members.moved(object.key, kind: .objectUpdate, to: object.sceneKey) }
            if json.owner?.nonEmpty != nil { locks.set(owner: object.owner, of: object.key) }
            if json.transform != nil { writeBehind.supersede(object) }
        }
    }

    private static func checkLengths(_ json: ObjectJSON, _ type: ObjectMessageType) throws {
        try JSONResponse.checkLengths(
            [json.name, json.scene, json.type, json.subtype, json.owner, json.parent, json.assetSubID],
            list: .objects, messageType: type.rawValue
        )
        if let actions = json.actions {
            try checkActions(actions.map(\.name), maximum: ActionEdit<ObjectKeyframe>.maximumActions, list: .objects, messageType: type.rawValue)
        }
    }

    /// Lock and unlock are atomic compare-and-sets on the owner: lock only when there is none, unlock only
    /// by the owner. Refusals are 409 with err_code 123.
    private func lock(key: String, device: String?, locking: Bool) async throws -> Response {
        let type: ObjectMessageType = locking ? .lock : .unlock
        guard let device = device?.nonEmpty else {
            throw EnvelopeError(.badRequest, .insufficientData, "name the device: ?device=ID", list: .objects, messageType: type.rawValue)
        }
        return try await change(key, type) { object in
            if locking {
                guard object.owner.isEmpty else { throw RecordRefusal.locked(by: object.owner) }
                object.owner = device
            } else {
                guard object.owner == device else { throw RecordRefusal.notOwner(owner: object.owner) }
                object.owner = ""
            }
        } after: { object in
            locks.set(owner: object.owner, of: object.key)
        }
    }

    private func query(_ request: Request, sceneKey: String?) async throws -> Response {
        let type = ObjectMessageType.query
        let list = try await JSONResponse.decode(ObjectList.self, from: request, list: .objects, messageType: type.rawValue)
        let limit = list.numRecords ?? 10
        guard (0...JSONResponse.maximumQueryRecords).contains(limit), (list.items?.count ?? 0) <= JSONResponse.maximumQueryFilters else {
            throw EnvelopeError(.badRequest, .insufficientData, "num_records must be 0 to \(JSONResponse.maximumQueryRecords), with at most \(JSONResponse.maximumQueryFilters) filters", list: .objects, messageType: type.rawValue)
        }
        var found: [String: SceneObject] = [:]
        for json in list.items ?? [ObjectJSON()] {
            var filter = ObjectFilter()
            filter.name = json.name ?? ""
            filter.sceneKey = sceneKey ?? json.scene ?? ""
            filter.type = json.type ?? ""
            filter.subtype = json.subtype ?? ""
            filter.owner = json.owner ?? ""
            filter.parent = json.parent ?? ""
            filter.assetSubID = json.assetSubID ?? ""
            filter.assets = json.assets ?? []
            // An application's query finds only its scenes' objects.
            for object in try await store.objects(matching: filter, limit: limit) where RequestCaller.mayReach(scene: object.sceneKey) {
                found[object.key] = overlaid(object)
            }
        }
        return try respond(.query, found.keys.sorted().map { found[$0]! }, transactionID: list.transactionID)
    }

    private static func notFound(_ key: String, _ type: ObjectMessageType) -> EnvelopeError {
        EnvelopeError.notFound("no object \(key)", list: .objects, messageType: type.rawValue)
    }

    /// An event's transform is visible before the write-behind persister stores it.
    private func overlaid(_ object: SceneObject) -> SceneObject {
        writeBehind.overlaid(object)
    }

    /// Reads, changes and writes the object in one transaction, then answers with it.
    private func change(
        _ key: String,
        _ type: ObjectMessageType,
        emits: Bool = false,
        transactionID: String? = nil,
        _ body: @escaping @Sendable (inout SceneObject) throws -> Void,
        after: (SceneObject) -> Void = { _ in }
    ) async throws -> Response {
        let changed: SceneObject?
        do {
            changed = try await store.updateObject(key: key, body)
        } catch let refusal as RecordRefusal {
            throw refusal.envelope(list: .objects, messageType: type.rawValue)
        }
        guard let changed else { throw Self.notFound(key, type) }
        after(changed)
        if emits { emit(type, changed) }
        return try respond(type, [overlaid(changed)], transactionID: transactionID)
    }

    private func respond(_ type: ObjectMessageType, _ objects: [SceneObject], transactionID: String? = nil) throws -> Response {
        try JSONResponse.make(ObjectList.response(type, objects.map { ObjectJSON($0, messageType: type) }, transactionID: transactionID))
    }

    private func emit(_ type: ObjectMessageType, _ object: SceneObject) {
        guard let json = try? JSONEncoder().encode(ObjectJSON(overlaid(object), messageType: type)) else { return }
        stream.publish(.transaction(TransactionEvent(sceneKey: object.sceneKey, messageType: type.rawValue, json: ByteBuffer(bytes: json))))
    }
}
