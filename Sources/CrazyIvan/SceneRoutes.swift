public import AeselHTTP
import AeselModel
public import AeselSealing
public import AeselStore
import Foundation
import AeselWire
public import Hummingbird
public import NIOCore

/// CrazyIvan's scene and registration transactions (reference 3.4 and 3.5).
///
/// Registration answers HTTP 200 with the outcome in `err_code`, as the original did, and always carries
/// the UDP endpoint the device must send its events to.
public struct SceneRoutes: Sendable {
    /// Where the devices of these scenes send their events: the pair's CLyman UDP address.
    public struct EventDestination: Sendable {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    private let store: any AeselStore
    private let fanOut: FanOut
    private let destination: @Sendable (_ requestArrivedAt: SocketAddress?) -> EventDestination
    private let sealed: Bool
    /// The original's AES-256-CBC mode: the deployment's secrets, handed to every device.
    private let originalSecrets: OriginalEventCipher.Secrets?
    /// CLyman's sessions when it runs in this process, so that a new key works from the next datagram.
    private let sessions: EventSessions?

    /// - Parameters:
    ///   - eventDestination: the pair's CLyman UDP endpoint, asked at each registration with the server
    ///     address the request came in on.
    ///   - sealed: each registration issues a new session key for sealed events.
    public init(
        store: any AeselStore, fanOut: FanOut, sealed: Bool = false, sessions: EventSessions? = nil,
        originalSecrets: OriginalEventCipher.Secrets? = nil,
        eventDestination: @escaping @Sendable (_ requestArrivedAt: SocketAddress?) -> EventDestination
    ) {
        self.store = store
        self.fanOut = fanOut
        self.sealed = sealed
        self.originalSecrets = originalSecrets
        self.sessions = sessions
        destination = eventDestination
    }

    public func add(to router: Router<AeselRequestContext>) {
        // The same paths, through a group that first refuses NUL in the path and query, then a caller not
        // granted the path's scene.
        let router = router.group().add(middleware: NULParameterRefusal<AeselRequestContext>()).add(middleware: SceneGuard<AeselRequestContext>(list: .scenes))
        router.post("/v1/scene") { request, _ in
            try await create(request, pathKey: nil)
        }
        router.post("/v1/scene/query") { request, _ in
            try await query(request)
        }
        router.put("/v1/scene/{scene}") { request, context in
            try await create(request, pathKey: context.parameters.decoded("scene"))
        }
        router.get("/v1/scene/{scene}") { _, context in
            try await get(sceneKey: context.parameters.decoded("scene"))
        }
        router.post("/v1/scene/{scene}") { request, context in
            try await update(request, sceneKey: context.parameters.decoded("scene"))
        }
        router.delete("/v1/scene/{scene}") { _, context in
            try await delete(sceneKey: context.parameters.decoded("scene"))
        }
        router.put("/v1/scene/{scene}/asset/{asset}") { _, context in
            let asset = try context.parameters.decoded("asset")
            return try await change(context.parameters.decoded("scene"), .update) { scene in
                if !scene.assets.contains(asset) { scene.assets.append(asset) }
            }
        }
        router.delete("/v1/scene/{scene}/asset/{asset}") { _, context in
            let asset = try context.parameters.decoded("asset")
            return try await change(context.parameters.decoded("scene"), .update) { scene in
                scene.assets.removeAll { $0 == asset }
            }
        }
        // The original's Cache API (reference 3.8): Adrestia asks a pair to load a scene it just moved
        // there, so that its devices' registrations are in the fan-out before the first event.
        // With `?moved=true` (a failover), the scene's binary-format devices are told to ask for their new
        // endpoint at once.
        router.put("/v1/scene/cache/{scene}") { request, context in
            let sceneKey = try context.parameters.decoded("scene")
            fanOut.preload([sceneKey])
            if request.uri.queryParameters.get("moved") == "true" {
                fanOut.announceMove(of: sceneKey, to: try await store.devices(inScene: sceneKey).compactMap { Recipient($0, inScene: sceneKey) })
            }
            return try JSONResponse.make(SceneList.response(.cache, scenes: [SceneJSON(Scene(key: sceneKey))]))
        }
        router.delete("/v1/scene/cache/{scene}") { _, context in
            let sceneKey = try context.parameters.decoded("scene")
            fanOut.sceneDeleted(sceneKey)
            return try JSONResponse.make(SceneList.response(.cache, scenes: [SceneJSON(Scene(key: sceneKey))]))
        }
        // Registration, through the gateway (scene in the path) and on CrazyIvan itself (scene in the body).
        for action in RegistrationAction.allCases {
            router.post(RouterPath("/v1/scene/{scene}/\(action.rawValue)")) { request, context in
                try await registration(action, request, sceneKey: context.parameters.decoded("scene"), arrivedAt: context.localAddress)
            }
            router.post(RouterPath("/v1/\(action.rawValue)")) { request, context in
                try await registration(action, request, sceneKey: nil, arrivedAt: context.localAddress)
            }
        }
    }

    func create(_ request: Request, pathKey: String?) async throws -> Response {
        let type = SceneMessageType.create.rawValue
        let list = try await JSONResponse.decode(SceneList.self, from: request, list: .scenes, messageType: type)
        let json = list.scenes?.first ?? SceneJSON()
        try JSONResponse.checkLengths([pathKey, json.key, json.name, json.region], list: .scenes, messageType: type)
        let key = pathKey ?? json.key?.nonEmpty ?? KeyGenerator.uuid()
        guard EventCodec.isValidKey(key) else {
            throw EnvelopeError(.badRequest, .translationError, "a scene key is at most 255 bytes", messageType: type)
        }
        try RequestCaller.require(scene: key, messageType: type)
        let scene = json.scene(key: key)
        do {
            try await store.createScene(scene)
        } catch let error as StoreError where error.code == .duplicate {
            throw EnvelopeError(.conflict, .processingError, "scene \(key) already exists", messageType: type)
        }
        fanOut.sceneCreated(key)
        return try JSONResponse.make(SceneList.response(.create, scenes: [SceneJSON(scene)], transactionID: list.transactionID))
    }

    /// Sets the fields given; `assets` and `tags` are appended with `operation` 10 (the default) and removed
    /// with 11, as in the original.
    func update(_ request: Request, sceneKey: String) async throws -> Response {
        let list = try await JSONResponse.decode(SceneList.self, from: request, list: .scenes, messageType: SceneMessageType.update.rawValue)
        let json = list.scenes?.first ?? SceneJSON()
        // The limits of a create hold for an update too.
        try JSONResponse.checkLengths([json.name, json.region], list: .scenes, messageType: SceneMessageType.update.rawValue)
        let removing = list.operation == 11
        return try await change(sceneKey, .update, transactionID: list.transactionID) { scene in
            if let value = json.name?.nonEmpty { scene.name = value }
            if let value = json.description?.nonEmpty { scene.description = value }
            if let value = json.thumbnail?.nonEmpty { scene.thumbnail = value }
            if let value = json.region?.nonEmpty { scene.region = value }
            if let value = json.latitude { scene.latitude = value }
            if let value = json.longitude { scene.longitude = value }
            if let value = json.distance { scene.distance = value }
            if let value = json.active { scene.isActive = value }
            if let value = json.isPublic { scene.isPublic = value }
            if json.isPrivate == true { scene.isPublic = false }
            for (items, field) in [(json.assets ?? [], \Scene.assets), (json.tags ?? [], \Scene.tags)] {
                if removing {
                    scene[keyPath: field].removeAll { items.contains($0) }
                } else {
                    for item in items where !scene[keyPath: field].contains(item) { scene[keyPath: field].append(item) }
                }
            }
        }
    }

    /// Deletes the scene with its registrations and links; its devices receive nothing more.
    func delete(sceneKey: String) async throws -> Response {
        guard let scene = try await store.scene(key: sceneKey), try await store.deleteScene(key: sceneKey) else {
            throw EnvelopeError.notFound("no scene \(sceneKey)", list: .scenes, messageType: SceneMessageType.delete.rawValue)
        }
        fanOut.sceneDeleted(sceneKey)
        return try JSONResponse.make(SceneList.response(.delete, scenes: [SceneJSON(scene)]))
    }

    /// `scenes[0]` gives the criteria: `name` and `region` match exactly, every one of `tags` must be on the
    /// scene, and `latitude`, `longitude` and `distance` (kilometres) select scenes within that distance.
    /// Results are ordered by key and paged by `start_record` and `num_records` (default 10).
    func query(_ request: Request) async throws -> Response {
        let type = SceneMessageType.query
        let list = try await JSONResponse.decode(SceneList.self, from: request, list: .scenes, messageType: type.rawValue)
        let criteria = list.scenes?.first ?? SceneJSON()
        let start = list.startRecord ?? 0
        let count = list.numRecords ?? 10
        guard start >= 0, count >= 0 else {
            throw EnvelopeError(.badRequest, .insufficientData, "start_record and num_records must not be negative", messageType: type.rawValue)
        }
        var scenes = try await store.scenes(name: criteria.name?.nonEmpty, region: criteria.region?.nonEmpty)
        // An application finds only the scenes it is granted.
        scenes.removeAll { !RequestCaller.mayReach(scene: $0.key) }
        let tags = criteria.tags ?? []
        scenes.removeAll { scene in !tags.allSatisfy(scene.tags.contains) }
        if let latitude = criteria.latitude, let longitude = criteria.longitude, let distance = criteria.distance, distance > 0 {
            scenes.removeAll { scene in
                guard let sceneLatitude = scene.latitude, let sceneLongitude = scene.longitude else { return true }
                return Geography.kilometres(from: (latitude, longitude), to: (sceneLatitude, sceneLongitude)) > distance
            }
        }
        let page = Array(scenes.dropFirst(start).prefix(count))
        guard !page.isEmpty else {
            throw EnvelopeError.notFound("no scene matches", list: .scenes, messageType: type.rawValue)
        }
        var response = SceneList.response(type, scenes: page.map { SceneJSON($0) }, transactionID: list.transactionID)
        response.startRecord = start
        return try JSONResponse.make(response)
    }

    private func change(_ sceneKey: String, _ type: SceneMessageType, transactionID: String? = nil, _ body: @escaping @Sendable (inout Scene) -> Void) async throws -> Response {
        guard let scene = try await store.updateScene(key: sceneKey, body) else {
            throw EnvelopeError.notFound("no scene \(sceneKey)", list: .scenes, messageType: type.rawValue)
        }
        return try JSONResponse.make(SceneList.response(type, scenes: [SceneJSON(scene)], transactionID: transactionID))
    }

    func get(sceneKey: String) async throws -> Response {
        guard let scene = try await store.scene(key: sceneKey) else {
            throw EnvelopeError.notFound("no scene \(sceneKey)", list: .scenes, messageType: SceneMessageType.get.rawValue)
        }
        let devices = try await store.devices(inScene: sceneKey).map(DeviceJSON.init)
        return try JSONResponse.make(SceneList.response(.get, scenes: [SceneJSON(scene, devices: devices)]))
    }

    enum RegistrationAction: String, CaseIterable {
        case register, deregister, align
    }

    func registration(_ action: RegistrationAction, _ request: Request, sceneKey: String?, arrivedAt local: SocketAddress?) async throws -> Response {
        switch action {
        case .register: try await register(request, sceneKey: sceneKey, arrivedAt: local)
        case .deregister: try await deregister(request, sceneKey: sceneKey, arrivedAt: local)
        case .align: try await align(request, sceneKey: sceneKey, arrivedAt: local)
        }
    }

    /// Registers a device. When the device is registered in another scene linked to this one, directly or
    /// through a chain of aligned scenes, its pose here is computed from its pose there
    /// (docs/coordinates.md) and that scene is returned as the origin scene.
    func register(_ request: Request, sceneKey pathKey: String?, arrivedAt local: SocketAddress?) async throws -> Response {
        let type = SceneMessageType.register
        let list = try await JSONResponse.decode(SceneList.self, from: request, list: .scenes, messageType: type.rawValue)
        let sceneJSON = list.scenes?.first ?? SceneJSON()
        guard let sceneKey = pathKey ?? sceneJSON.key?.nonEmpty else {
            return try registrationFailure(type, arrivedAt: local, .insufficientData, "the body names no scene: scenes[0].key")
        }
        try RequestCaller.require(scene: sceneKey, messageType: type.rawValue)
        guard let deviceJSON = sceneJSON.devices?.first else {
            return try registrationFailure(type, arrivedAt: local, .insufficientData, "the body names no device: scenes[0].devices[0]")
        }
        guard EventCodec.isValidKey(sceneKey), EventCodec.isValidKey(deviceJSON.key ?? "") else {
            return try registrationFailure(type, arrivedAt: local, .insufficientData, "scene and device keys are at most 255 bytes")
        }
        guard let hostname = deviceJSON.hostname?.nonEmpty, let port = deviceJSON.port, (1...65535).contains(port) else {
            return try registrationFailure(type, arrivedAt: local, .insufficientData, "a device needs a hostname and a port from 1 to 65535")
        }
        var device = Device(
            key: deviceJSON.key?.nonEmpty ?? KeyGenerator.uuid(),
            hostname: hostname,
            port: port,
            connectionString: deviceJSON.connectionString ?? "",
            format: deviceJSON.format ?? .json,
            transform: try Self.transform(deviceJSON.transform) ?? .identity,
            // A new key at every registration: registering again is how a device rotates it.
            sessionKey: sealed ? .generate() : nil
        )
        guard let recipient = Recipient(device, inScene: sceneKey) else {
            return try registrationFailure(type, arrivedAt: local, .insufficientData, "hostname \(hostname) is not an IP address")
        }
        if let problem = fanOut.unreachable(recipient.address) {
            return try registrationFailure(type, arrivedAt: local, .insufficientData, "hostname \(hostname): \(problem)")
        }

        // The original creates a scene that does not exist yet on registration.
        let scene: Scene
        if let existing = try await store.scene(key: sceneKey) {
            scene = existing
        } else {
            scene = sceneJSON.scene(key: sceneKey)
            // The limits of a create hold for a scene created by a registration too.
            guard [scene.name, scene.region].allSatisfy({ $0.utf8.count <= JSONResponse.maximumFieldLength }) else {
                return try registrationFailure(type, arrivedAt: local, .insufficientData, "a scene name or region is longer than \(JSONResponse.maximumFieldLength) bytes")
            }
            do {
                try await store.createScene(scene)
            } catch let error as StoreError where error.code == .duplicate {}  // created meanwhile by a concurrent registration
        }
        var origin = Scene(key: "")
        if let (originKey, pose) = try await poseFromLinkedScene(deviceKey: device.key, sceneKey: sceneKey) {
            device.transform = pose
            origin = try await store.scene(key: originKey) ?? Scene(key: originKey)
        }
        try await store.register(device, inScene: sceneKey)
        if let sessionKey = device.sessionKey { sessions?.install(sessionKey, sceneKey: sceneKey, deviceKey: device.key) }
        fanOut.registered(recipient, in: sceneKey)

        var response = SceneList.response(
            type,
            scenes: [SceneJSON(scene, devices: [DeviceJSON(device)]), SceneJSON(origin)],
            transactionID: list.transactionID
        )
        let eventDestination = destination(local)
        response.eventDestinationHost = eventDestination.host
        response.eventDestinationPort = eventDestination.port
        addEventSecurity(of: device, to: &response)
        return try JSONResponse.make(response)
    }

    /// How the device's events are protected, and its keys.
    private func addEventSecurity(of device: Device, to response: inout SceneList) {
        if let sessionKey = device.sessionKey {
            response.eventSecurity = "sealed"
            response.sessionKeyID = sessionKey.id
            response.sessionKey = Data(sessionKey.secret).base64EncodedString()
        }
        if let originalSecrets {
            response.eventSecurity = "aes-cbc"
            response.encryptionKey = originalSecrets.toPair.key
            response.encryptionIV = originalSecrets.toPair.iv
            response.encryptionPassword = originalSecrets.toPair.password
            response.encryptionSalt = originalSecrets.toPair.salt
            response.decryptionKey = originalSecrets.toDevice.key
            response.decryptionIV = originalSecrets.toDevice.iv
            response.decryptionPassword = originalSecrets.toDevice.password
            response.decryptionSalt = originalSecrets.toDevice.salt
        }
    }

    func deregister(_ request: Request, sceneKey pathKey: String?, arrivedAt local: SocketAddress?) async throws -> Response {
        let type = SceneMessageType.deregister
        let list = try await JSONResponse.decode(SceneList.self, from: request, list: .scenes, messageType: type.rawValue)
        guard let sceneKey = pathKey ?? list.scenes?.first?.key?.nonEmpty else {
            return try registrationFailure(type, arrivedAt: local, .insufficientData, "the body names no scene: scenes[0].key")
        }
        try RequestCaller.require(scene: sceneKey, messageType: type.rawValue)
        guard let deviceKey = list.scenes?.first?.devices?.first?.key?.nonEmpty else {
            return try registrationFailure(type, arrivedAt: local, .insufficientData, "the body names no device key: scenes[0].devices[0].key")
        }
        // Out of the fan-out first: a deregistered device must not get one more event.
        fanOut.deregistered(deviceKey: deviceKey, from: sceneKey)
        sessions?.withdraw(sceneKey: sceneKey, deviceKey: deviceKey)
        guard try await store.deregister(deviceKey: deviceKey, fromScene: sceneKey) else {
            return try registrationFailure(type, arrivedAt: local, .notFound, "device \(deviceKey) is not registered in scene \(sceneKey)")
        }
        // Again after the commit: a refresh that read the store before it must not bring the device back.
        fanOut.deregistered(deviceKey: deviceKey, from: sceneKey)
        let scene = try await store.scene(key: sceneKey) ?? Scene(key: sceneKey)
        return try JSONResponse.make(SceneList.response(type, scenes: [SceneJSON(scene)], transactionID: list.transactionID))
    }

    /// Sets the device's pose in the scene, then creates or updates the link between this scene and every
    /// other scene the device is registered in.
    func align(_ request: Request, sceneKey pathKey: String?, arrivedAt local: SocketAddress?) async throws -> Response {
        let type = SceneMessageType.align
        let list = try await JSONResponse.decode(SceneList.self, from: request, list: .scenes, messageType: type.rawValue)
        let sceneJSON = list.scenes?.first ?? SceneJSON()
        guard let sceneKey = pathKey ?? sceneJSON.key?.nonEmpty else {
            return try registrationFailure(type, arrivedAt: local, .insufficientData, "the body names no scene: scenes[0].key")
        }
        try RequestCaller.require(scene: sceneKey, messageType: type.rawValue)
        guard let deviceJSON = sceneJSON.devices?.first, let deviceKey = deviceJSON.key?.nonEmpty,
            let pose = try Self.transform(deviceJSON.transform)
        else {
            return try registrationFailure(type, arrivedAt: local, .insufficientData, "the body names no device key and transform: scenes[0].devices[0]")
        }
        let registrations = try await store.registrations(ofDevice: deviceKey)
        guard var device = Self.device(in: sceneKey, of: registrations) else {
            return try registrationFailure(type, arrivedAt: local, .notFound, "device \(deviceKey) is not registered in scene \(sceneKey)")
        }
        device.transform = pose
        try await store.register(device, inScene: sceneKey)
        for link in Self.links(aligning: sceneKey, at: pose, with: registrations) {
            try await store.setLink(link)
        }
        let scene = try await store.scene(key: sceneKey) ?? Scene(key: sceneKey)
        return try JSONResponse.make(SceneList.response(type, scenes: [SceneJSON(scene, devices: [DeviceJSON(device)])], transactionID: list.transactionID))
    }

    // These two run outside the async caller: there a rethrowing call on the registrations (`first(where:)`
    // with a capturing closure, returning a large value) freed its task allocations out of order and aborted
    // the process (Swift 6.3, swiftlang/swift#87481).
    private static func device(in sceneKey: String, of registrations: [(sceneKey: String, device: Device)]) -> Device? {
        registrations.first { $0.sceneKey == sceneKey }?.device
    }

    /// The links from `sceneKey` to every other scene of the device's `registrations`.
    private static func links(aligning sceneKey: String, at pose: DeviceTransform, with registrations: [(sceneKey: String, device: Device)]) -> [SceneLink] {
        registrations.filter { $0.sceneKey != sceneKey }.map { SceneLink.between((sceneKey, pose), ($0.sceneKey, $0.device.transform)) }
    }

    /// The device's pose in `sceneKey` from its registration in a linked scene, and that scene's key.
    private func poseFromLinkedScene(deviceKey: String, sceneKey: String) async throws -> (String, DeviceTransform)? {
        let elsewhere = try await store.registrations(ofDevice: deviceKey).filter { $0.sceneKey != sceneKey }
        guard !elsewhere.isEmpty else { return nil }
        // Gather the links of the connected part of the scene graph around this scene.
        var known: Set<String> = [sceneKey]
        var frontier = [sceneKey]
        var links: [SceneLink] = []
        while !frontier.isEmpty, known.count < 10_000 {
            let found = try await store.links(touching: frontier)
            frontier = []
            for link in found where !links.contains(link) {
                links.append(link)
                for key in [link.from, link.to] where known.insert(key).inserted { frontier.append(key) }
            }
        }
        for registration in elsewhere where known.contains(registration.sceneKey) {
            if let pose = SceneGraph.pose(of: registration.device.transform, from: registration.sceneKey, to: sceneKey, links: links) {
                return (registration.sceneKey, pose)
            }
        }
        return nil
    }

    /// `{"translation":[x,y,z],"rotation":[x,y,z]}` as a pose; nil when absent. A missing array is zeros;
    /// other lengths were refused when the body was decoded, coordinates beyond the bound are a 400 here.
    static func transform(_ json: DeviceTransformJSON?) throws -> DeviceTransform? {
        guard let json else { return nil }
        guard let pose = json.pose else {
            throw EnvelopeError(
                .badRequest, .translationError, "translation and rotation must be 3 numbers within ±\(DeviceTransformJSON.maximumCoordinate)", list: .scenes)
        }
        return pose
    }

    /// Registration outcomes travel in `err_code` with HTTP 200 (reference 3.4).
    private func registrationFailure(_ type: SceneMessageType, arrivedAt local: SocketAddress?, _ code: ErrorCode, _ message: String) throws -> Response {
        var body = SceneList(messageType: type.rawValue, errorCode: code, errorMessage: message, numRecords: 0, startRecord: 0, scenes: [])
        let eventDestination = destination(local)
        body.eventDestinationHost = eventDestination.host
        body.eventDestinationPort = eventDestination.port
        return try JSONResponse.make(body)
    }
}

/// No store keeps NUL (PostgreSQL refuses it), so no path or query parameter may carry one (`%00`), as no
/// body may: 400 with err_code 110, before the route reads the store.
struct NULParameterRefusal<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path.contains("%00") || request.uri.query?.contains("%00") == true {
            throw EnvelopeError(.badRequest, .translationError, "strings may not contain NUL (\\u0000)", list: .init(path: request.uri.path))
        }
        return try await next(request, context)
    }
}
