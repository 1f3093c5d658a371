import AeselHTTP
import AeselModel
import Foundation
import HTTPTypes
import NIOCore
import NIOFoundationCompat

/// Where Adrestia forwards a `/v1` call it does not answer itself: the pair of the scene the call names
/// (any healthy pair when it names none), and which half: objects and properties to CLyman, the rest to
/// CrazyIvan.
package struct ForwardingTarget: Equatable, Sendable {
    package enum Half: Sendable { case clyman, crazyIvan }

    package var sceneKey: String?
    package var half: Half

    package init(sceneKey: String?, half: Half) {
        self.sceneKey = sceneKey
        self.half = half
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
        if let sceneKey { try Self.refuseProbeScene(sceneKey) }
        let resource = segments.count >= 4 && segments[1] == "scene" ? segments[3] : segments.count >= 2 ? segments[1] : ""
        half = resource == "object" || resource == "property" ? .clyman : .crazyIvan
    }

    /// Adrestia's probe scenes are its own: a device must not register in them or delete them.
    package static func refuseProbeScene(_ sceneKey: String) throws {
        if sceneKey.hasPrefix(HealthProber.probeScenePrefix) {
            throw EnvelopeError(.forbidden, .processingError, "scenes named \(HealthProber.probeScenePrefix)… are Adrestia's health probes")
        }
    }

    /// `scenes[0]` of a scene list body, if it parses.
    static func firstScene(in body: ByteBuffer) -> [String: Any]? {
        let parsed = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any]
        return (parsed?["scenes"] as? [[String: Any]])?.first
    }
}
