// What an HTTP request body meets: the `JSONDecoder` decoding of every body type the routes decode, then
// the conversions the routes do with the decoded values that can be reached without a store or a server
// (AeselModel's and AeselWire's own code), and the encoding of the answers and events made from them.
//
// Each input is tried as every body type, so the corpus is plain JSON. Invariants: no trap; whatever a
// route accepts, it can answer (its response and its event encode; a response decodes to what it says).
//
// Some route logic lives in CLyman, CrazyIvan, AeselHTTP or Adrestia, next to Hummingbird and the store,
// and cannot be linked here. Where it is a line or two it is mirrored below, marked "mirror of": those
// lines test the model code they call, not the route's own copy.
import AeselModel
import AeselWire
import Foundation
import FuzzSupport
import NIOCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPBody(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let body = data.map { Data(bytes: $0, count: size) } ?? Data()
    // Mirror of JSONResponse.decode (AeselHTTP): a body with NUL, raw or escaped, is refused before decoding.
    if body.contains(0) || body.range(of: Data("\\u0000".utf8)) != nil { return 0 }
    if let list = try? JSONDecoder().decode(ObjectList.self, from: body) { objects(list) }
    if let list = try? JSONDecoder().decode(PropertyList.self, from: body) { properties(list) }
    if let list = try? JSONDecoder().decode(SceneList.self, from: body) { scenes(list) }
    if let action = try? JSONDecoder().decode(ObjectAction.self, from: body) { actions(action) }
    if let action = try? JSONDecoder().decode(PropertyAction.self, from: body) { actions(action) }
    keyframe(ObjectKeyframe.self, body)
    keyframe(PropertyKeyframe.self, body)
    if let announcement = try? JSONDecoder().decode(PairAnnouncement.self, from: body) { pair(announcement) }
    if let endpoint = try? JSONDecoder().decode(EventEndpoint.self, from: body) {
        roundTrip(endpoint, "an endpoint")
    }
    return 0
}

/// The routes' encoder (JSONResponse.make) and the events' (ObjectRoutes.emit): each must encode what it
/// is given, and the answer must decode to the same value.
func roundTrip<T: Codable & Equatable>(_ value: T, _ what: String) {
    let sorted = JSONEncoder()
    sorted.outputFormatting = [.sortedKeys]
    let encoded: Data
    do {
        encoded = try sorted.encode(value)
        _ = try JSONEncoder().encode(value)
    } catch {
        Fuzz.check(false, "\(what) accepted from a body cannot be encoded: \(error) for \(value)")
        return
    }
    do {
        let again = try JSONDecoder().decode(T.self, from: encoded)
        Fuzz.check(again == value, "\(what) does not round-trip: \(again) for \(value) from \(String(decoding: encoded, as: UTF8.self))")
    } catch {
        Fuzz.check(false, "\(what) encoded cannot be decoded: \(error) from \(String(decoding: encoded, as: UTF8.self))")
    }
}

/// An answer's envelope (not Equatable): it must encode, and decode again.
func envelope<T: Codable>(_ value: T, _ what: String) -> T? {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    guard let encoded = try? encoder.encode(value) else {
        Fuzz.check(false, "\(what) cannot be encoded: \(value)")
        return nil
    }
    return try? JSONDecoder().decode(T.self, from: encoded)
}

/// ObjectRoutes.create (and update, query): the records made from each item, and the answer with them.
func objects(_ list: ObjectList) {
    let created = (list.items ?? []).map { json in
        SceneObject(
            key: "0123456789abcdef01234567",
            sceneKey: json.scene?.nonEmpty ?? "scene",
            name: json.name ?? "",
            type: json.type ?? "",
            subtype: json.subtype ?? "",
            owner: json.owner ?? "",
            parent: json.parent ?? "",
            assetSubID: json.assetSubID ?? "",
            transform: json.transform ?? .identity,
            assets: json.assets ?? [],
            actions: json.actions ?? []
        )
    }
    for object in created {
        Fuzz.check((0..<16).allSatisfy { object.transform.elements[$0].isFinite }, "a transform that is not finite")
        roundTrip(ObjectJSON(object, messageType: .create), "an object")
        for action in object.actions { actions(action) }
    }
    let response = ObjectList.response(.create, created.map { ObjectJSON($0, messageType: .create) }, transactionID: list.transactionID)
    let again = envelope(response, "an object list")
    Fuzz.check(again?.items == response.items && again?.transactionID == response.transactionID, "an object list does not round-trip")
}

/// PropertyRoutes.create: at most 4 values.
func properties(_ list: PropertyList) {
    for json in list.items ?? [] {
        Fuzz.check((json.values?.count ?? 0) <= SceneProperty.maximumValues, "more than 4 values: \(json.values ?? [])")
        let property = SceneProperty(
            key: "0123456789abcdef01234567",
            sceneKey: json.scene?.nonEmpty ?? "scene",
            name: json.name ?? "",
            parent: json.parent ?? "",
            assetSubID: json.assetSubID ?? "",
            values: json.values ?? [],
            actions: json.actions ?? []
        )
        roundTrip(PropertyJSON(property, messageType: .create), "a property")
        for action in property.actions { actions(action) }
        // The values of a property are what a UDP property update (msg_type 9) carries: they must encode too.
        // (Its scene exists, so its key is valid: the scene routes refuse others.)
        if !property.values.isEmpty, EventCodec.isValidKey(property.sceneKey) {
            let event = ObjectEvent(kind: .propertyUpdate, sceneKey: property.sceneKey, objectKey: property.key, values: property.values)
            for format in [EventFormat.json, .binary] {
                let datagram = EventCodec.encode(event, as: format, allocator: ByteBufferAllocator())
                Fuzz.check((try? EventCodec.decode(datagram)) == event, "a property's values as a \(format) event")
            }
        }
    }
    let response = PropertyList.response(.create, [], transactionID: list.transactionID)
    Fuzz.check(envelope(response, "a property list")?.transactionID == list.transactionID, "a property list does not round-trip")
}

/// ActionRoutes: an action as given, and its keyframes added one by one as the keyframe routes do
/// (ActionEdit.addKeyframe calls upsert).
func actions<Keyframe>(_ action: Action<Keyframe>) {
    Fuzz.check(action.keyframes.count <= Action<Keyframe>.maximumKeyframes, "more than \(Action<Keyframe>.maximumKeyframes) keyframes")
    Fuzz.check(zip(action.keyframes, action.keyframes.dropFirst()).allSatisfy { $0.frame < $1.frame }, "keyframes not sorted by frame")
    var built = Action<Keyframe>(name: action.name, description: action.description, owner: action.owner)
    for keyframe in action.keyframes.reversed() { built.upsert(keyframe) }
    Fuzz.check(built == action, "upserting an action's keyframes does not rebuild it")
    roundTrip(action, "an action")
    if let object = action as? ObjectAction {
        for keyframe in object.keyframes {
            Fuzz.check(keyframe.translationHandle.count == 3 && keyframe.rotationHandle.count == 4 && keyframe.scaleHandle.count == 3, "a keyframe's handles are not 3/4/3")
        }
    }
}

/// The keyframe routes: POST .../keyframe decodes the body as it is; POST .../keyframe/{frame} first adds
/// the path's frame when the body has none (mirror of JSONResponse.decode's `defaults`, in AeselHTTP).
func keyframe<Keyframe: Codable & Equatable & FrameNumbered>(_ type: Keyframe.Type, _ body: Data) {
    if let keyframe = try? JSONDecoder().decode(Keyframe.self, from: body) { roundTrip(keyframe, "a keyframe") }
    guard var object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else { return }
    if object["frame"] == nil { object["frame"] = 7 }
    guard let merged = try? JSONSerialization.data(withJSONObject: object) else { return }
    if let keyframe = try? JSONDecoder().decode(Keyframe.self, from: merged) {
        roundTrip(keyframe, "a keyframe with a default frame")
    }
}

/// SceneRoutes: create and update (SceneJSON.scene(key:)), register (a device per `devices` entry, its
/// pose), align (links between the scenes of the body from their first devices' poses, and poses moved
/// along them), query (distances and paging).
func scenes(_ list: SceneList) {
    let items = list.scenes ?? []
    var answer: [SceneJSON] = []
    var poses: [(scene: String, pose: DeviceTransform)] = []
    for (index, json) in items.enumerated() {
        let key = json.key?.nonEmpty ?? "scene-\(index)"
        let scene = json.scene(key: key)
        var devices: [DeviceJSON] = []
        for deviceJSON in json.devices ?? [] {
            // Mirror of SceneRoutes.register's checks and of SceneRoutes.transform (CrazyIvan).
            guard let hostname = deviceJSON.hostname?.nonEmpty, let port = deviceJSON.port, (1...65535).contains(port) else { continue }
            let pose = transform(deviceJSON.transform) ?? .identity
            if deviceJSON.transform != nil, transform(deviceJSON.transform) == nil { continue }  // a 400
            let device = Device(
                key: deviceJSON.key?.nonEmpty ?? "device",
                hostname: hostname,
                port: port,
                connectionString: deviceJSON.connectionString ?? "",
                format: deviceJSON.format ?? .json,
                transform: pose
            )
            // As Recipient.init (CrazyIvan): the fan-out's address for the device.
            _ = SocketAddress.validated(host: hostname, port: port)
            devices.append(DeviceJSON(device))
        }
        if let first = json.devices?.first, let pose = transform(first.transform) { poses.append((key, pose)) }
        answer.append(SceneJSON(scene, devices: devices))
    }
    for scene in answer { roundTrip(scene, "a scene") }
    let response = SceneList.response(.create, scenes: answer, transactionID: list.transactionID)
    let again = envelope(response, "a scene list")
    Fuzz.check(again?.scenes == answer && again?.transactionID == list.transactionID, "a scene list does not round-trip")

    // Align: a link from each scene to the next, as a device registered in both would make, and the poses
    // of the devices moved along the chain (SceneRoutes.poseFromLinkedScene, SceneGraph).
    var links: [SceneLink] = []
    for (a, b) in zip(poses, poses.dropFirst()) { links.append(SceneLink.between(a, b)) }
    for link in links { checkPose(link.transform, "a link") }
    if let first = poses.first, let last = poses.last {
        if let pose = SceneGraph.pose(of: first.pose, from: first.scene, to: last.scene, links: links) { checkPose(pose, "a pose along the links") }
        if let pose = SceneGraph.pose(of: last.pose, from: last.scene, to: first.scene, links: links) { checkPose(pose, "a pose back along the links") }
    }

    // Query: distances from the criteria (scenes[0]) to the others (Geography, CrazyIvan), and the page.
    if let criteria = items.first, let latitude = criteria.latitude, let longitude = criteria.longitude {
        for other in items.dropFirst() {
            if let lat = other.latitude, let long = other.longitude { _ = Geography.kilometres(from: (latitude, longitude), to: (lat, long)) }
        }
    }
    let start = list.startRecord ?? 0
    let count = list.numRecords ?? 10
    if start >= 0, count >= 0 { _ = Array(answer.dropFirst(start).prefix(count)) }  // mirror of SceneRoutes.query
}

/// As SceneRoutes.transform (CrazyIvan): the pose, or nil when absent or refused (a 400 there).
func transform(_ json: DeviceTransformJSON?) -> DeviceTransform? {
    json?.pose
}

/// A pose or link computed from the poses in a body is stored and answered: it must be finite to encode.
func checkPose(_ pose: DeviceTransform, _ what: String) {
    let numbers = [pose.translation.x, pose.translation.y, pose.translation.z, pose.rotation.x, pose.rotation.y, pose.rotation.z]
    Fuzz.check(numbers.allSatisfy(\.isFinite), "\(what) computed from finite poses is not finite: \(pose)")
    roundTrip(DeviceTransformJSON(pose), what)
}

/// Adrestia's PUT /v1/pairs/{pair} (embedded discovery) and etcd's announcements.
func pair(_ announcement: PairAnnouncement) {
    _ = announcement.problem
    if let (host, port) = announcement.udpHostAndPort {
        Fuzz.check((1...65535).contains(port), "a port out of range: \(port)")
        _ = try? SocketAddress(ipAddress: host, port: port)
    }
    roundTrip(announcement.eventEndpoint, "a pair's endpoint")
}
