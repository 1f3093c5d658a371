public import Hummingbird
public import NIOCore

/// The request context of a pair's routes: Hummingbird's basic one, plus the server address the request's
/// connection came in on, which a server bound to a wildcard answers devices with.
public struct AeselRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    private let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// This server's address on the request's connection, e.g. 127.0.0.1 for a request made to loopback.
    public var localAddress: SocketAddress? { channel.localAddress }
}
