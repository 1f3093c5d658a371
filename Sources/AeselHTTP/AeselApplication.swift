public import AeselAuth
import AeselModel
import CoreMetrics
public import Hummingbird
public import Logging
public import NIOCore

/// The router every Aesel process starts from, before any route: errors answered in the envelope,
/// request bodies bounded by `limits.maximumBodySize`, and callers authenticated by `access` (open when
/// it asks for no credentials). `context` is Hummingbird's basic one, or a pair's ``AeselRequestContext``.
public func makeHTTPRouter<Context: RequestContext>(context: Context.Type, limits: HTTPConnectionLimits, access: AccessControl = .open) -> Router<Context> {
    let router = Router(context: context)
    router.add(middleware: BodyLimitMiddleware(maximumBodySize: limits.maximumBodySize))
    router.add(middleware: EnvelopeErrorMiddleware())
    if access.requiresCredentials { router.add(middleware: AuthenticationMiddleware(access: access)) }
    return router
}

/// Sets ``JSONResponse/maximumBodySize`` for the request, and refuses at once a body whose declared
/// length is larger: the client gets its 413 before it has sent the rest (which the connection drains).
/// Every 413, this one's or a route's, counts in `aesel_http_limited_total{limit="body"}`.
struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let maximumBodySize: Int
    let refused = Counter(label: "aesel_http_limited_total", dimensions: [("limit", "body")])

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await JSONResponse.$maximumBodySize.withValue(maximumBodySize) {
                if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maximumBodySize {
                    throw EnvelopeError(
                        .contentTooLarge, .translationError, "the body is larger than \(maximumBodySize) bytes", list: .init(path: request.uri.path))
                }
                return try await next(request, context)
            }
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            refused.increment()
            throw error
        }
    }
}

/// The HTTP server of every Aesel process: `router` on HTTP/1 with the connection limits, at `host` and
/// `port`, HTTPS only when `tls` has a certificate; a request to upgrade goes to `webSockets`' routes.
/// `onListening` is called once with the bound address.
public func makeApplication(
    router: Router<AeselRequestContext>, webSockets: Router<AeselRequestContext>? = nil, host: String, port: Int, limits: HTTPConnectionLimits,
    tls: TLSSettings = .init(), serverName: String, logger: Logger, onListening: @escaping @Sendable (SocketAddress) async -> Void
) throws -> Application<RouterResponder<AeselRequestContext>> {
    Application(
        router: router,
        server: .http1(limits: limits, tls: try tls.serverConfiguration(), webSockets: webSockets),
        configuration: .init(address: .hostname(host, port: port), serverName: serverName),
        onServerRunning: { channel in
            if let address = channel.localAddress { await onListening(address) }
        },
        logger: logger
    )
}
