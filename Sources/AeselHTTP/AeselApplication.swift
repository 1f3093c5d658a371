import AeselModel
public import Hummingbird
public import Logging
public import NIOCore

/// The router every Aesel process starts from, before any route: errors answered in the envelope, and
/// request bodies bounded by `limits.maximumBodySize`.
public func makeHTTPRouter(limits: HTTPConnectionLimits) -> Router<BasicRequestContext> {
    let router = Router()
    router.add(middleware: BodyLimitMiddleware(maximumBodySize: limits.maximumBodySize))
    router.add(middleware: EnvelopeErrorMiddleware())
    return router
}

/// Sets ``JSONResponse/maximumBodySize`` for the request, and refuses at once a body whose declared
/// length is larger: the client gets its 413 before it has sent the rest (which the connection drains).
struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let maximumBodySize: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try await JSONResponse.$maximumBodySize.withValue(maximumBodySize) {
            if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maximumBodySize {
                throw EnvelopeError(
                    .contentTooLarge, .translationError, "the body is larger than \(maximumBodySize) bytes", list: .init(path: request.uri.path))
            }
            return try await next(request, context)
        }
    }
}

/// The HTTP server of every Aesel process: `router` on HTTP/1 with the connection limits, at `host` and
/// `port`; `onListening` is called once with the bound address.
public func makeApplication(
    router: Router<BasicRequestContext>, host: String, port: Int, limits: HTTPConnectionLimits, serverName: String, logger: Logger,
    onListening: @escaping @Sendable (SocketAddress) async -> Void
) -> Application<RouterResponder<BasicRequestContext>> {
    Application(
        router: router,
        server: .http1(limits: limits),
        configuration: .init(address: .hostname(host, port: port), serverName: serverName),
        onServerRunning: { channel in
            if let address = channel.localAddress { await onListening(address) }
        },
        logger: logger
    )
}
