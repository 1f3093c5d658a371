public import AeselAuth
import AeselModel
import HTTPTypes
public import Hummingbird
import Logging
import Metrics

/// The caller of the request being answered, set by ``AuthenticationMiddleware`` for the request's task;
/// nil where the process asks for no credentials. Routes ask it what the caller may reach.
public enum RequestCaller {
    @TaskLocal public static var current: Principal? = nil

    /// Whether the caller may reach `sceneKey`: always on an open server.
    public static func mayReach(scene sceneKey: String) -> Bool {
        current?.mayReach(scene: sceneKey) ?? true
    }

    /// Refuses a caller that may not reach `sceneKey`: 403 in the envelope of `list`.
    public static func require(scene sceneKey: String, list: EnvelopeError.List = .scenes, messageType: Int = 0) throws {
        guard mayReach(scene: sceneKey) else { throw forbidden(scene: sceneKey, list: list, messageType: messageType) }
    }

    public static func forbidden(scene sceneKey: String, list: EnvelopeError.List = .scenes, messageType: Int = 0) -> EnvelopeError {
        EnvelopeError(.forbidden, .error, "this credential is not granted scene \(sceneKey)", list: list, messageType: messageType)
    }
}

/// Authenticates every request but `/health` (and `/metrics` when open): 401 with `WWW-Authenticate:
/// Bearer` for a missing or invalid credential, 403 for an application on a route that is no scene's
/// (pairs, the Cache API, metrics, Adrestia's cluster listing). Scene checks are the routes' own
/// (``RequestCaller``, ``SceneGuard``), since only they know a record's scene. Both answers are in the
/// original's envelope with err_code 101 (ERROR), the one of its codes that fits, and are counted in
/// `aesel_http_auth_refused_total{reason=…}`.
struct AuthenticationMiddleware<Context: RequestContext>: RouterMiddleware {
    let access: AccessControl
    let refusedMissing = Counter(label: "aesel_http_auth_refused_total", dimensions: [("reason", "missing")])
    let refusedInvalid = Counter(label: "aesel_http_auth_refused_total", dimensions: [("reason", "invalid")])
    let refusedForbidden = Counter(label: "aesel_http_auth_refused_total", dimensions: [("reason", "forbidden")])

    static var apiKeyField: HTTPField.Name { HTTPField.Name(AccessControl.apiKeyHeaderName)! }
    static var clusterSecretField: HTTPField.Name { HTTPField.Name(ClusterSecret.headerName)! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if path == "/health" || (path == "/metrics" && access.metricsOpen) { return try await next(request, context) }
        let list = EnvelopeError.List(path: path)
        let caller: Principal
        do {
            let (authorization, apiKey) = Self.credentials(of: request)
            caller = try await access.authenticate(
                authorization: authorization, apiKey: apiKey, clusterSecret: request.headers[Self.clusterSecretField])
        } catch let error as AuthError {
            (error.code == .missing ? refusedMissing : refusedInvalid).increment()
            context.logger.debug("request refused", metadata: ["aesel.path": "\(path)", "aesel.reason": "\(error.message)"])
            throw EnvelopeError(.unauthorized, .error, error.message, list: list, headers: [.wwwAuthenticate: #"Bearer realm="aesel""#])
        }
        if !caller.isPrivileged, Self.isPrivileged(path) {
            refusedForbidden.increment()
            throw EnvelopeError(.forbidden, .error, "\(path) is for admin credentials and the cluster", list: list)
        }
        return try await RequestCaller.$current.withValue(caller) { try await next(request, context) }
    }

    /// The request's bearer token and API key. A browser cannot set headers on a WebSocket, so an upgrade
    /// request may carry them in the query instead, as `access_token` (RFC 6750) and `api_key`.
    static func credentials(of request: Request) -> (authorization: String?, apiKey: String?) {
        let headers = (request.headers[.authorization], request.headers[apiKeyField])
        guard headers == (nil, nil), request.headers[.upgrade]?.lowercased() == "websocket" else { return headers }
        let query = request.uri.queryParameters
        return (query.get("access_token").map { "Bearer \($0)" }, query.get("api_key"))
    }

    /// Routes that are no scene's: the pair registry and listing, the original's cluster listing, the
    /// Cache API and metrics.
    static func isPrivileged(_ path: String) -> Bool {
        path == "/metrics" || path == "/v1/pairs" || path.hasPrefix("/v1/pairs/") || path.hasPrefix("/cluster/") || path.hasPrefix("/v1/scene/cache/")
    }
}

/// On a route group: refuses a caller not granted the path's `{scene}` (403) before the route runs.
public struct SceneGuard<Context: RequestContext>: RouterMiddleware {
    let list: EnvelopeError.List?

    /// - Parameter list: the envelope of the refusal; nil for the list of the path.
    public init(list: EnvelopeError.List? = nil) {
        self.list = list
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if RequestCaller.current != nil, let sceneKey = context.parameters.decodedIfPresent("scene") {
            try RequestCaller.require(scene: sceneKey, list: list ?? .init(path: request.uri.path))
        }
        return try await next(request, context)
    }
}

/// On a route group of records named by `{key}` (objects, properties): refuses a caller not granted the
/// record's scene (403) before the route runs. A record that does not exist is left to the route (404).
public struct RecordSceneGuard<Context: RequestContext>: RouterMiddleware {
    let list: EnvelopeError.List
    let sceneOfRecord: @Sendable (_ key: String) async throws -> String?

    public init(list: EnvelopeError.List, sceneOfRecord: @escaping @Sendable (_ key: String) async throws -> String?) {
        self.list = list
        self.sceneOfRecord = sceneOfRecord
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let caller = RequestCaller.current, !caller.isPrivileged, let key = context.parameters.decodedIfPresent("key"),
            let sceneKey = try await sceneOfRecord(key), !caller.mayReach(scene: sceneKey)
        {
            throw RequestCaller.forbidden(scene: sceneKey, list: list)
        }
        return try await next(request, context)
    }
}
