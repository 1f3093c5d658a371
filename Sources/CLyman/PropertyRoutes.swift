import AeselHTTP
import AeselModel
public import AeselStore
public import AeselStream
import AeselWire
import Foundation
public import Hummingbird
import NIOCore

/// CLyman's property transactions: the object API for 1 to 4 values (reference 1.5 and 1.7), at
/// `/v1/property/...` and `/v1/scene/{scene}/property/...`, under the same rules as ``ObjectRoutes``: a
/// property named by key is found whatever scene the path names, and its scene need not exist in the
/// store. Properties cannot be locked. Their events
/// carry the property codes: 8, 9 and 11, frames 23, 24 and 26, actions 27, 28 and 30.
public struct PropertyRoutes: Sendable {
    private let store: any AeselStore
    private let writeBehind: TransformWriteBehind
    private let stream: any ChangeStream
    private let members: SceneMembers

    public init(store: any AeselStore, writeBehind: TransformWriteBehind, stream: any ChangeStream, members: SceneMembers) {
        self.store = store
        self.writeBehind = writeBehind
        self.stream = stream
        self.members = members
    }

    public func add<Context: RequestContext>(to group: RouterGroup<Context>) {
        let group = group.group().add(middleware: NULParameterRefusal<Context>()).add(middleware: SceneGuard<Context>(list: .properties))
            .add(middleware: RecordSceneGuard<Context>(list: .properties) { [store] key in try await store.property(key: key)?.sceneKey })
        group.post("property") { request, context in
            try await create(request, sceneKey: context.parameters.decodedIfPresent("scene"))
        }
        group.post("property/query") { request, context in
            try await query(request, sceneKey: context.parameters.decodedIfPresent("scene"))
        }
        group.get("property/{key}") { _, context in
            let key = try context.parameters.decoded("key")
            guard let property = try await store.property(key: key) else { throw Self.notFound(key, .get) }
            return try respond(.get, [overlaid(property)])
        }
        group.post("property/{key}") { request, context in
            let list = try await JSONResponse.decode(PropertyList.self, from: request, list: .properties, messageType: ObjectMessageType.update.propertyCode)
            guard let json = list.items?.first else {
                throw EnvelopeError(.badRequest, .insufficientData, "the body lists no property", list: .properties, messageType: ObjectMessageType.update.propertyCode)
            }
            try Self.check(json, .update)
            if let scene = json.scene?.nonEmpty {
                try RequestCaller.require(scene: scene, list: .properties, messageType: ObjectMessageType.update.propertyCode)
            }
            return try await change(context.parameters.decoded("key"), .update) { property in
                if let name = json.name?.nonEmpty { property.name = name }
                if let scene = json.scene?.nonEmpty { property.sceneKey = scene }
                if let parent = json.parent?.nonEmpty { property.parent = parent }
                if let value = json.assetSubID?.nonEmpty { property.assetSubID = value }
                if let values = json.values { property.values = values }
                if let actions = json.actions { property.actions = uniqueActions(actions) }
            } after: { property in
                if json.scene?.nonEmpty != nil { members.moved(property.key, kind: .propertyUpdate, to: property.sceneKey) }
                if json.values != nil { writeBehind.supersede(property) }
            }
        }
        group.delete("property/{key}") { _, context in
            let key = try context.parameters.decoded("key")
            guard let deleted = try await store.deleteProperty(key: key) else { throw Self.notFound(key, .delete) }
            members.removed(deleted.key, kind: .propertyUpdate, from: deleted.sceneKey)
            writeBehind.discard(key: deleted.key)
            emit(.delete, deleted)
            return try respond(.delete, [deleted])
        }
        ActionRoutes<PropertyKeyframe>(segment: "property", list: .properties, codeOffset: 8) { key, edit in
            try await change(key, edit.messageType) { property in
                try edit.apply(to: &property.actions)
            }
        }.add(to: group)
    }

    private func create(_ request: Request, sceneKey: String?) async throws -> Response {
        let code = ObjectMessageType.create.propertyCode
        let list = try await JSONResponse.decode(PropertyList.self, from: request, list: .properties, messageType: code)
        guard let requested = list.items, !requested.isEmpty else {
            throw EnvelopeError(.badRequest, .insufficientData, "the body lists no properties", list: .properties, messageType: code)
        }
        // Every item is checked before any is created, so that a refused list creates nothing.
        var scenes: [String] = []
        for json in requested {
            guard let scene = json.scene?.nonEmpty ?? sceneKey else {
                throw EnvelopeError(.badRequest, .insufficientData, "a property needs a scene", list: .properties, messageType: code)
            }
            try Self.check(json, .create)
            try RequestCaller.require(scene: scene, list: .properties, messageType: code)
            scenes.append(scene)
        }
        var created: [SceneProperty] = []
        for (json, scene) in zip(requested, scenes) {
            let property = SceneProperty(
                key: KeyGenerator.objectKey(),
                sceneKey: scene,
                name: json.name ?? "",
                parent: json.parent ?? "",
                assetSubID: json.assetSubID ?? "",
                values: json.values ?? [],
                actions: json.actions.map(uniqueActions) ?? []
            )
            try await store.createProperty(property)
            members.added(property.key, kind: .propertyUpdate, to: property.sceneKey)
            members.prefetch(property.sceneKey)
            emit(.create, property)
            created.append(property)
        }
        return try respond(.create, created, transactionID: list.transactionID)
    }

    private static func check(_ json: PropertyJSON, _ type: ObjectMessageType) throws {
        try JSONResponse.checkLengths([json.name, json.scene, json.parent, json.assetSubID], list: .properties, messageType: type.propertyCode)
        if let actions = json.actions {
            try checkActions(actions.map(\.name), maximum: ActionEdit<PropertyKeyframe>.maximumActions, list: .properties, messageType: type.propertyCode)
        }
    }

    private func query(_ request: Request, sceneKey: String?) async throws -> Response {
        let code = ObjectMessageType.query.propertyCode
        let list = try await JSONResponse.decode(PropertyList.self, from: request, list: .properties, messageType: code)
        let limit = list.numRecords ?? 10
        guard (0...JSONResponse.maximumQueryRecords).contains(limit), (list.items?.count ?? 0) <= JSONResponse.maximumQueryFilters else {
            throw EnvelopeError(.badRequest, .insufficientData, "num_records must be 0 to \(JSONResponse.maximumQueryRecords), with at most \(JSONResponse.maximumQueryFilters) filters", list: .properties, messageType: code)
        }
        var found: [String: SceneProperty] = [:]
        for json in list.items ?? [PropertyJSON()] {
            var filter = PropertyFilter()
            filter.name = json.name ?? ""
            filter.sceneKey = sceneKey ?? json.scene ?? ""
            filter.parent = json.parent ?? ""
            filter.assetSubID = json.assetSubID ?? ""
            for property in try await store.properties(matching: filter, limit: limit) where RequestCaller.mayReach(scene: property.sceneKey) {
                found[property.key] = overlaid(property)
            }
        }
        return try respond(.query, found.keys.sorted().map { found[$0]! }, transactionID: list.transactionID)
    }

    private static func notFound(_ key: String, _ type: ObjectMessageType) -> EnvelopeError {
        EnvelopeError.notFound("no property \(key)", list: .properties, messageType: type.propertyCode)
    }

    private func overlaid(_ property: SceneProperty) -> SceneProperty {
        writeBehind.overlaid(property)
    }

    private func change(
        _ key: String,
        _ type: ObjectMessageType,
        _ body: @escaping @Sendable (inout SceneProperty) throws -> Void,
        after: (SceneProperty) -> Void = { _ in }
    ) async throws -> Response {
        let changed: SceneProperty?
        do {
            changed = try await store.updateProperty(key: key, body)
        } catch let refusal as RecordRefusal {
            throw refusal.envelope(list: .properties, messageType: type.propertyCode)
        }
        guard let changed else { throw Self.notFound(key, type) }
        after(changed)
        emit(type, changed)
        return try respond(type, [overlaid(changed)])
    }

    private func respond(_ type: ObjectMessageType, _ properties: [SceneProperty], transactionID: String? = nil) throws -> Response {
        try JSONResponse.make(PropertyList.response(type, properties.map { PropertyJSON($0, messageType: type) }, transactionID: transactionID))
    }

    private func emit(_ type: ObjectMessageType, _ property: SceneProperty) {
        guard let json = try? JSONEncoder().encode(PropertyJSON(overlaid(property), messageType: type)) else { return }
        stream.publish(.transaction(TransactionEvent(sceneKey: property.sceneKey, messageType: type.propertyCode, json: ByteBuffer(bytes: json))))
    }
}
