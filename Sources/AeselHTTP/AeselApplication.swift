public import Hummingbird
public import Logging
public import NIOCore

/// The HTTP server of every Aesel process: `router` on HTTP/1 with the connection limits, at `host` and
/// `port`; `onListening` is called once with the bound address.
public func makeApplication<Context: RequestContext>(
    router: Router<Context>, host: String, port: Int, limits: HTTPConnectionLimits, serverName: String, logger: Logger,
    onListening: @escaping @Sendable (SocketAddress) async -> Void
) -> Application<RouterResponder<Context>> where Context.Source == ApplicationRequestContextSource {
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
