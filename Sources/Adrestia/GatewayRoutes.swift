import AeselAuth
import AeselStore
import NIOFoundationCompat
import AeselHTTP
import AeselModel
import AeselWire
import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import Metrics

/// Adrestia's HTTP API: the pair registry and list, the scene endpoint, and the gateway that routes
/// every other `/v1` call to a pair (reference section 4): a scene's registration, objects and properties
/// to the scene's pair, anything else to any healthy pair.
struct GatewayRoutes: Sendable {
    let cluster: ClusterManager
    let forwardedReports = Counter(label: "aesel_failed_reports_forwarded_total")
    /// Set with embedded discovery: pairs announce themselves here.
    let registry: EmbeddedRegistry?

    func add(to router: Router<AeselRequestContext>) {
        router.add(middleware: Forwarding(routes: self))
        if let registry {
            router.put("/v1/pairs/{pair}") { request, context in
                var request = request
                let body: ByteBuffer
                do {
                    body = try await request.collectBody(upTo: 1 << 16)
                } catch let error as HTTPError where error.status == .contentTooLarge {
                    throw EnvelopeError(.contentTooLarge, .translationError, "a pair announcement is at most 65536 bytes")
                }
                guard var announcement = try? JSONDecoder().decode(PairAnnouncement.self, from: Data(buffer: body)) else {
                    throw EnvelopeError(.badRequest, .translationError, "a pair announcement needs pair, region, clyman_udp, clyman_http and crazyivan_http")
                }
                announcement.id = try context.parameters.decoded("pair")
                if let problem = announcement.problem { throw EnvelopeError(.badRequest, .insufficientData, problem) }
                registry.announce(announcement)
                return try JSONResponse.make(["status": "announced"])
            }
            router.delete("/v1/pairs/{pair}") { _, context in
                registry.withdraw(pairID: try context.parameters.decoded("pair"))
                return try JSONResponse.make(["status": "withdrawn"])
            }
        }
        router.get("/v1/pairs") { _, _ in
            try await listPairs()
        }
        // The original's scene keys of a cluster, here a pair: 416 with [] when it has none.
        router.get("/cluster/{name}") { _, context in
            let name = try context.parameters.decoded("name")
            // No pair has such an id (and PostgreSQL refuses NUL): nothing to read.
            guard EventCodec.isValidKey(name) else { return try JSONResponse.make([String](), status: .rangeNotSatisfiable) }
            let scenes = try await cluster.store.scenes(onPair: name)
            return try JSONResponse.make(scenes, status: scenes.isEmpty ? .rangeNotSatisfiable : .ok)
        }
        let scoped = router.group().add(middleware: SceneGuard<AeselRequestContext>(list: .scenes))
        scoped.get("/v1/scene/{scene}/endpoint") { request, context in
            let sceneKey = try context.parameters.decoded("scene")
            // Only scenes that exist get a pair: a made-up key must not take a place in the mapping.
            guard EventCodec.isValidKey(sceneKey), try await cluster.store.scene(key: sceneKey) != nil else {
                throw EnvelopeError.notFound("no scene \(sceneKey)", list: .scenes, messageType: SceneMessageType.get.rawValue)
            }
            if let failed = request.uri.queryParameters.get("failed") {
                // The leader decides on reports: a follower passes this one on and gives its answer.
                if !cluster.leadership.isLeading, request.headers[.aeselForwardedBy] == nil,
                    let answer = await cluster.askLeader(request.uri.string), answer.status == .ok
                {
                    forwardedReports.increment()
                    return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: answer.body))
                }
                cluster.reportFailed(endpoint: failed)
            }
            let pair = try await assignedPair(sceneKey, region: nil)
            return try JSONResponse.make(pair.eventEndpoint)
        }
        scoped.post("/v1/scene/{scene}/register") { request, context in
            try await register(request, pathKey: context.parameters.decoded("scene"))
        }
        router.post("/v1/register") { request, _ in
            try await register(request, pathKey: nil)
        }
    }

    /// Sends every `/v1` call Adrestia does not answer itself to a pair. A middleware rather than a
    /// wildcard route: the router does not fall back from `/v1/scene/{scene}/...` to a wildcard.
    struct Forwarding: RouterMiddleware {
        typealias Context = AeselRequestContext
        let routes: GatewayRoutes

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            let segments = request.uri.path.split(separator: "/")
            let ownRoute =
                segments.count < 2 || segments[0] != "v1" || segments[1] == "pairs"
                || (segments.count == 4 && segments[1] == "scene" && (segments[3] == "endpoint" || segments[3] == "register"))
                || (segments.count == 2 && segments[1] == "register")
            return ownRoute ? try await next(request, context) : try await routes.forward(request)
        }
    }

    private func listPairs() async throws -> Response {
        struct Listed: Encodable {
            let pair: String, region: String, clymanUDP: String, clymanHTTP: String, crazyIvanHTTP: String
            let healthy: Bool
            let probeRoundTripMicroseconds: Double?
            let scenes: Int

            enum CodingKeys: String, CodingKey {
                case pair, region, healthy, scenes
                case clymanUDP = "clyman_udp", clymanHTTP = "clyman_http", crazyIvanHTTP = "crazyivan_http"
                case probeRoundTripMicroseconds = "probe_round_trip_us"
            }
        }
        struct Leader: Encodable {
            let instance: String, url: String, sinceUnixMilliseconds: Int64
            /// Only from the leader itself: when its first probe round as leader began.
            let firstProbeRoundUnixMilliseconds: Int64?

            enum CodingKeys: String, CodingKey {
                case instance, url
                case sinceUnixMilliseconds = "since_unix_ms", firstProbeRoundUnixMilliseconds = "first_probe_round_unix_ms"
            }
        }
        struct Listing: Encodable {
            let pairs: [Listed]
            let instance: String?
            let leader: Leader?
        }
        let counts = try await cluster.store.sceneCountsByPair()
        let listed = cluster.snapshot.map { status in
            let pair = status.announcement
            return Listed(
                pair: pair.id, region: pair.region, clymanUDP: pair.clymanUDP, clymanHTTP: pair.clymanHTTP, crazyIvanHTTP: pair.crazyIvanHTTP,
                healthy: status.healthy,
                probeRoundTripMicroseconds: status.lastRoundTrip.map { Double($0.components.attoseconds) / 1e12 + Double($0.components.seconds) * 1e6 },
                scenes: counts[pair.id] ?? 0)
        }
        let leadership = cluster.leadership
        let leader = leadership.leader.map { record in
            Leader(
                instance: record.instance, url: record.url, sinceUnixMilliseconds: record.since,
                firstProbeRoundUnixMilliseconds: record.instance == leadership.me?.instance ? leadership.firstProbeRound : nil)
        }
        return try JSONResponse.make(Listing(pairs: listed, instance: leadership.me?.instance, leader: leader))
    }

    /// The scene's healthy pair, assigned now if it has none (503 in the original's envelope when no pair
    /// can take it).
    func assignedPair(_ sceneKey: String, region: String?) async throws -> PairAnnouncement {
        guard EventCodec.isValidKey(sceneKey) else {
            throw EnvelopeError(.badRequest, .insufficientData, "scene keys are at most 255 bytes, without NUL")
        }
        try ForwardingTarget.refuseProbeScene(sceneKey)
        do {
            return try await cluster.pair(forScene: sceneKey, region: region)
        } catch let error as ClusterError where error.code == .noHealthyPair || error.code == .notLeader {
            throw EnvelopeError(.serviceUnavailable, .processingError, error.message)
        }
    }

    /// Registration goes to the scene's pair; the answer names the pair and its CLyman UDP endpoint. The
    /// scene is in the path, or (`/v1/register`) in the body; a body without one goes to any pair, which
    /// answers the original's error.
    private func register(_ request: Request, pathKey: String?) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: JSONResponse.maximumBodySize)
        let first = ForwardingTarget.firstScene(in: body)
        guard let sceneKey = pathKey ?? (first?["key"] as? String).flatMap({ $0.isEmpty ? nil : $0 }) else {
            return try await forward(request, body: body, to: ForwardingTarget(sceneKey: nil, half: .crazyIvan))
        }
        try RequestCaller.require(scene: sceneKey, messageType: SceneMessageType.register.rawValue)
        let pair = try await assignedPair(sceneKey, region: first?["region"] as? String)
        let answer = try await Self.send(request, body: body, to: pair.crazyIvanHTTP)
        guard answer.status == .ok, var envelope = (try? JSONSerialization.jsonObject(with: Data(buffer: answer.body))) as? [String: Any] else {
            return answer.response
        }
        let endpoint = pair.eventEndpoint
        envelope["event_destination_host"] = endpoint.host
        envelope["event_destination_port"] = endpoint.port
        envelope["pair"] = pair.id
        envelope["region"] = pair.region
        let data = try JSONSerialization.data(withJSONObject: envelope, options: [.sortedKeys])
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Any other `/v1` call: a scene's own routes go to its pair if it has a healthy one, the rest to any
    /// healthy pair; objects and properties to CLyman, the rest to CrazyIvan.
    func forward(_ request: Request) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: JSONResponse.maximumBodySize)
        return try await forward(request, body: body, to: try ForwardingTarget(method: request.method, path: request.uri.path, body: body))
    }

    private func forward(_ request: Request, body: ByteBuffer, to target: ForwardingTarget) async throws -> Response {
        var pair: PairAnnouncement?
        var sceneKey = target.sceneKey
        switch target.record {
        case .object(let key)? where EventCodec.isValidKey(key):
            sceneKey = try await cluster.store.object(key: key)?.sceneKey ?? sceneKey
        case .property(let key)? where EventCodec.isValidKey(key):
            sceneKey = try await cluster.store.property(key: key)?.sceneKey ?? sceneKey
        default:
            break
        }
        // A lock on a probe object would drop the probes, and take the pair down.
        if let sceneKey { try ForwardingTarget.refuseProbeScene(sceneKey) }
        if let sceneKey, EventCodec.isValidKey(sceneKey),
            let assigned = try await cluster.store.pairOfScene(sceneKey),
            let status = cluster.status(of: assigned), status.healthy
        {
            pair = status.announcement
        }
        guard let pair = pair ?? cluster.snapshot.filter(\.healthy).randomElement()?.announcement else {
            throw EnvelopeError(.serviceUnavailable, .processingError, "no healthy pair", list: .init(path: request.uri.path))
        }
        return try await Self.send(request, body: body, to: target.half == .clyman ? pair.clymanHTTP : pair.crazyIvanHTTP).response
    }

    struct Answer {
        let status: HTTPResponse.Status
        let headers: HTTPFields
        let body: ByteBuffer

        var response: Response {
            Response(status: status, headers: headers, body: .init(byteBuffer: body))
        }
    }

    /// Headers that belong to one connection, not to the request (RFC 9110, 7.6.1).
    static let hopByHop: Set<String> = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"]

    /// Sends `request` with `body` to the same path and query on `base`, with its end-to-end headers, and
    /// answers with the pair's status, headers and body; 502 when the pair cannot be reached.
    static func send(_ request: Request, body: ByteBuffer, to base: String) async throws -> Answer {
        var outgoing = HTTPClientRequest(url: base + request.uri.string)
        outgoing.method = HTTPMethod(rawValue: request.method.rawValue)
        for field in request.headers where !hopByHop.contains(field.name.canonicalName) {
            outgoing.headers.add(name: field.name.rawName, value: field.value)
        }
        // The caller's own credential goes on, so the pair checks its scenes as Adrestia did; the cluster
        // secret (never one a client sent) says the call comes through the cluster.
        outgoing.headers.remove(name: ClusterSecret.headerName)
        if let secret = ClusterCredentials.secret { outgoing.headers.add(name: ClusterSecret.headerName, value: secret.value) }
        if body.readableBytes > 0 { outgoing.body = .bytes(body) }
        do {
            let response = try await HTTPClient.cluster.execute(outgoing, timeout: .seconds(10))
            let answer = try await response.body.collect(upTo: 64 << 20)
            var headers = HTTPFields()
            for (name, value) in response.headers where !hopByHop.contains(name.lowercased()) {
                if let field = HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
            }
            return Answer(status: HTTPResponse.Status(code: Int(response.status.code)), headers: headers, body: answer)
        } catch {
            throw EnvelopeError(.badGateway, .processingError, "the pair at \(base) did not answer: \(error)", list: .init(path: request.uri.path))
        }
    }
}
