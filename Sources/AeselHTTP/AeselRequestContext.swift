public import Hummingbird
public import HummingbirdWebSocket
public import NIOCore

/// The request context of every Aesel process's routes: Hummingbird's basic one, plus the server address
/// the request's connection came in on, which a server bound to a wildcard answers devices with; and
/// WebSocket upgrades (``makeApplication(router:webSockets:host:port:limits:tls:serverName:logger:onListening:)``).
public struct AeselRequestContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>
    private let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        channel = source.channel
    }

    /// This server's address on the request's connection, e.g. 127.0.0.1 for a request made to loopback.
    public var localAddress: SocketAddress? { channel.localAddress }

    /// The address of the client on the request's connection.
    public var remoteAddress: SocketAddress? { channel.remoteAddress }

    /// Called once the request's connection is a WebSocket: the HTTP request timers stop.
    public func connectionUpgraded() {
        HTTPConnectionGuard.upgraded(channel)
    }
}
