import AeselHTTP
import AeselModel
import Foundation
import HTTPTypes
import NIOCore
import NIOFoundationCompat

/// Where Adrestia forwards a `/v1` call it does not answer itself: the pair of the scene the call names
/// (any healthy pair when it names none), and which half: objects and properties to CLyman, the rest to
/// CrazyIvan. A call about one object or property goes to the pair of the scene the store holds it in,
/// whatever scene the path names, so that its lock is taken where its events arrive.
package struct ForwardingTarget: Equatable, Sendable {
    package enum Half: Sendable { case clyman, crazyIvan }

    /// An object or property the path names by key (`/v1/object/{key}…`, `/v1/scene/{s}/property/{key}…`).
    package enum Record: Equatable, Sendable {
        case object(String), property(String)
    }

    package var sceneKey: String?
    package var half: Half
    package var record: Record?

    package init(sceneKey: String?, half: Half, record: Record? = nil) {
        self.sceneKey = sceneKey
        self.half = half
        self.record = record
    }

    /// The target of `method path` with `body`. Throws as a pair would for a method the pairs do not
    /// serve (404), and refuses Adrestia's own probe scenes (403).
    package init(method: HTTPRequest.Method, path: String, body: ByteBuffer) throws {
        guard [.get, .put, .post, .delete].contains(method) else {
            throw EnvelopeError.notFound("no route for \(method) \(path)", list: .init(path: path), messageType: 0)
        }
        let segments = path.split(separator: "/")
        // The scene is in the path, or in the body of /v1/deregister and /v1/align.
        if segments.count >= 3, segments[1] == "scene", segments[2] != "query", segments[2] != "cache" {
            sceneKey = String(segments[2]).removingPercentEncoding ?? String(segments[2])
        } else if segments.count == 2, segments[1] == "deregister" || segments[1] == "align" {
            sceneKey = Self.firstScene(in: body)?["key"] as? String
        }
        let resourceIndex = segments.count >= 4 && segments[1] == "scene" ? 3 : 1
        let resource = segments.count > resourceIndex ? segments[resourceIndex] : ""
        half = resource == "object" || resource == "property" ? .clyman : .crazyIvan
        if half == .clyman, segments.count > resourceIndex + 1, segments[resourceIndex + 1] != "query" {
            let key = String(segments[resourceIndex + 1]).removingPercentEncoding ?? String(segments[resourceIndex + 1])
            record = resource == "object" ? .object(key) : .property(key)
        } else if half == .clyman, sceneKey == nil, segments.count == 2 {
            // A create names its scene in its first item.
            sceneKey = Self.firstItem(resource == "object" ? "objects" : "properties", in: body)?["scene"] as? String
        }
        if let sceneKey { try Self.refuseProbeScene(sceneKey) }
    }

    /// Adrestia's probe scenes are its own: a device must not register in them or delete them.
    package static func refuseProbeScene(_ sceneKey: String) throws {
        if sceneKey.hasPrefix(HealthProber.probeScenePrefix) {
            throw EnvelopeError(.forbidden, .processingError, "scenes named \(HealthProber.probeScenePrefix)… are Adrestia's health probes")
        }
    }

    /// `scenes[0]` of a scene list body, if it parses.
    static func firstScene(in body: ByteBuffer) -> [String: Any]? {
        firstItem("scenes", in: body)
    }

    /// The first item of the body's list `name`, if it parses.
    static func firstItem(_ name: String, in body: ByteBuffer) -> [String: Any]? {
        let parsed = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any]
        return (parsed?[name] as? [[String: Any]])?.first
    }
}
