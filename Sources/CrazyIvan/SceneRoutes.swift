import AeselHTTP
import AeselModel
public import AeselStore
import AeselWire
public import Hummingbird

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
    private let eventDestination: EventDestination

    public init(store: any AeselStore, fanOut: FanOut, eventDestination: EventDestination) {
        self.store = store
        self.fanOut = fanOut
        self.eventDestination = eventDestination
    }

    public func add<Context: RequestContext>(to router: Router<Context>) {
        router.post("/v1/scene") { request, _ in
            try await create(request, pathKey: nil)
        }
        router.put("/v1/scene/{scene}") { request, context in
            try await create(request, pathKey: context.parameters.require("scene"))
        }
        router.get("/v1/scene/{scene}") { _, context in
            try await get(sceneKey: context.parameters.require("scene"))
        }
        router.post("/v1/scene/{scene}/register") { request, context in
            try await register(request, sceneKey: context.parameters.require("scene"))
        }
        router.post("/v1/scene/{scene}/deregister") { request, context in
            try await deregister(request, sceneKey: context.parameters.require("scene"))
        }
    }

    func create(_ request: Request, pathKey: String?) async throws -> Response {
        let type = SceneMessageType.create.rawValue
        let list = try await JSONResponse.decode(SceneList.self, from: request, list: .scenes, messageType: type)
        let json = list.scenes?.first ?? SceneJSON()
        let key = pathKey ?? json.key?.nonEmpty ?? KeyGenerator.uuid()
        let scene = json.scene(key: key)
        do {
            try await store.createScene(scene)
        } catch StoreError.duplicateKey {
            throw EnvelopeError(.conflict, .processingError, "scene \(key) already exists", messageType: type)
        }
        fanOut.sceneCreated(key)
        return try JSONResponse.make(SceneList.response(.create, scenes: [SceneJSON(scene)], transactionID: list.transactionID))
    }

    func get(sceneKey: String) async throws -> Response {
        guard let scene = try await store.scene(key: sceneKey) else {
            throw EnvelopeError.notFound("no scene \(sceneKey)", list: .scenes, messageType: SceneMessageType.get.rawValue)
        }
        let devices = try await store.devices(inScene: sceneKey).map(DeviceJSON.init)
        return try JSONResponse.make(SceneList.response(.get, scenes: [SceneJSON(scene, devices: devices)]))
    }

    func register(_ request: Request, sceneKey: String) async throws -> Response {
        let type = SceneMessageType.register
        let list = try await JSONResponse.decode(SceneList.self, from: request, list: .scenes, messageType: type.rawValue)
        let sceneJSON = list.scenes?.first ?? SceneJSON()
        guard let deviceJSON = sceneJSON.devices?.first else {
            return try registrationFailure(type, .insufficientData, "the body names no device: scenes[0].devices[0]")
        }
        guard let hostname = deviceJSON.hostname?.nonEmpty, let port = deviceJSON.port, (1...65535).contains(port) else {
            return try registrationFailure(type, .insufficientData, "a device needs a hostname and a port from 1 to 65535")
        }
        let device = Device(
            key: deviceJSON.key?.nonEmpty ?? KeyGenerator.uuid(),
            hostname: hostname,
            port: port,
            connectionString: deviceJSON.connectionString ?? "",
            format: deviceJSON.format ?? .json
        )
        guard let recipient = try? Recipient(device) else {
            return try registrationFailure(type, .insufficientData, "hostname \(hostname) is not an IP address")
        }

        // The original creates a scene that does not exist yet on registration.
        let scene: Scene
        if let existing = try await store.scene(key: sceneKey) {
            scene = existing
        } else {
            scene = sceneJSON.scene(key: sceneKey)
            do {
                try await store.createScene(scene)
            } catch StoreError.duplicateKey {}  // created meanwhile by a concurrent registration
        }
        try await store.register(device, inScene: sceneKey)
        fanOut.registered(recipient, in: sceneKey)

        var response = SceneList.response(
            type,
            scenes: [SceneJSON(scene, devices: [DeviceJSON(device)]), SceneJSON(Scene(key: ""))],
            transactionID: list.transactionID
        )
        response.eventDestinationHost = eventDestination.host
        response.eventDestinationPort = eventDestination.port
        return try JSONResponse.make(response)
    }

    func deregister(_ request: Request, sceneKey: String) async throws -> Response {
        let type = SceneMessageType.deregister
        let list = try await JSONResponse.decode(SceneList.self, from: request, list: .scenes, messageType: type.rawValue)
        guard let deviceKey = list.scenes?.first?.devices?.first?.key?.nonEmpty else {
            return try registrationFailure(type, .insufficientData, "the body names no device key: scenes[0].devices[0].key")
        }
        // Out of the fan-out first: a deregistered device must not get one more event.
        fanOut.deregistered(deviceKey: deviceKey, from: sceneKey)
        guard try await store.deregister(deviceKey: deviceKey, fromScene: sceneKey) else {
            return try registrationFailure(type, .notFound, "device \(deviceKey) is not registered in scene \(sceneKey)")
        }
        let scene = try await store.scene(key: sceneKey) ?? Scene(key: sceneKey)
        return try JSONResponse.make(SceneList.response(type, scenes: [SceneJSON(scene)], transactionID: list.transactionID))
    }

    /// Registration outcomes travel in `err_code` with HTTP 200 (reference 3.4).
    private func registrationFailure(_ type: SceneMessageType, _ code: ErrorCode, _ message: String) throws -> Response {
        var body = SceneList(messageType: type.rawValue, errorCode: code, errorMessage: message, numRecords: 0, startRecord: 0, scenes: [])
        body.eventDestinationHost = eventDestination.host
        body.eventDestinationPort = eventDestination.port
        return try JSONResponse.make(body)
    }
}
