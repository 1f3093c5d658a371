import Hummingbird
public import HummingbirdWebSocket
public import HummingbirdCore
import HummingbirdTLS
import CoreMetrics
import Logging
import NIOConcurrencyHelpers
public import NIOCore
public import NIOSSL
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// How long an HTTP connection may take over each part of a request, so that a client cannot hold a
/// descriptor by sending nothing, a request head byte by byte, or a body slower than its length says.
public struct HTTPConnectionLimits: Sendable, Equatable {
    /// Between requests, with no byte of the next one arrived (keep-alive); and while an answer cannot
    /// be written because the client reads nothing.
    public var idleTimeout: TimeAmount
    /// From a request's first byte to the end of its head.
    public var headerTimeout: TimeAmount
    /// From the end of a request's head to the end of its body.
    public var bodyTimeout: TimeAmount
    /// The largest request body, in bytes: a larger one is answered 413 in the error envelope (at once
    /// when its Content-Length says so, else when that many bytes have arrived) and then drained.
    public var maximumBodySize: Int
    /// After an answer given before its request's body ended (a 413, say): how much more of the body is
    /// read and thrown away, and how long to wait for each next part of it, so that a client still
    /// sending reads the answer. Past either, or once the body has taken `bodyTimeout` since its head (as
    /// long as a body the server reads may take), the server stops sending, keeps discarding for a
    /// moment, and closes.
    public var drainLimit: Int
    public var drainTimeout: TimeAmount
    /// The most connections the listener keeps open at once; one more is closed as soon as it is
    /// accepted, and counted in `aesel_http_limited_total{limit="connections"}`.
    public var maximumConnections: Int

    public init(
        idleTimeout: TimeAmount = .seconds(60),
        headerTimeout: TimeAmount = .seconds(10),
        bodyTimeout: TimeAmount = .seconds(30),
        maximumBodySize: Int = 1 << 20,
        drainLimit: Int = 64 << 20,
        drainTimeout: TimeAmount = .seconds(10),
        maximumConnections: Int = 10_000
    ) {
        self.idleTimeout = idleTimeout
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.maximumBodySize = maximumBodySize
        self.drainLimit = drainLimit
        self.drainTimeout = drainTimeout
        self.maximumConnections = maximumConnections
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 with Aesel's connection limits, inside TLS when `tls` is given; connections beyond
    /// `limits.maximumConnections` open at once are closed as soon as they are accepted, before any
    /// handshake, and counted. With `webSockets`, a request that asks to upgrade is answered by that
    /// router's WebSocket routes, behind the same limits until it is upgraded.
    public static func http1<WebSockets: HTTPResponderBuilder & SendableMetatype>(
        limits: HTTPConnectionLimits, tls: TLSConfiguration? = nil, webSockets: WebSockets?
    ) -> HTTPServerBuilder where WebSockets.Responder.Context: WebSocketRequestContext {
        let metrics = HTTPConnectionGuard.Metrics()
        let gate = ConnectionGate(maximum: limits.maximumConnections)
        let webSocketResponder = webSockets?.buildResponder()
        let http1 = HTTP1Channel.Configuration(additionalChannelHandlers: [HTTPConnectionGuard.PartsHandler()])
        // Runs once, as the listener starts: TLSChannel makes its SSL context there.
        return HTTPServerBuilder { responder in
            func counted(_ child: some ServerChildChannel) throws -> any ServerChildChannel {
                let guarded = GuardedChannel(inner: child, limits: limits, metrics: metrics)
                guard let tls else { return CountedChannel(base: guarded, gate: gate) }
                return CountedChannel(base: try TLSChannel(guarded, tlsConfiguration: tls), gate: gate)
            }
            guard let webSocketResponder else { return try counted(HTTP1Channel(responder: responder, configuration: http1)) }
            return try counted(
                HTTP1WebSocketUpgradeChannel(
                    responder: responder, webSocketResponder: webSocketResponder,
                    configuration: .init(http1: http1, ws: .init(maxFrameSize: 1 << 16, autoPing: .enabled(timePeriod: .seconds(30))))))
        }
    }

    /// HTTP/1.1 with Aesel's connection limits and no WebSocket routes.
    public static func http1(limits: HTTPConnectionLimits, tls: TLSConfiguration? = nil) -> HTTPServerBuilder {
        http1(limits: limits, tls: tls, webSockets: Router<BasicWebSocketRequestContext>?.none)
    }
}

/// How many connections a listener has open, and whether one more may open.
final class ConnectionGate: Sendable {
    let maximum: Int
    private let count = NIOLockedValueBox(0)
    private let refused = Counter(label: "aesel_http_limited_total", dimensions: [("limit", "connections")])
    private let open = Gauge(label: "aesel_http_connections_open")

    init(maximum: Int) {
        self.maximum = maximum
    }

    /// Whether a new connection may stay; if so, it counts until ``closed()``. The gauge is set under
    /// the lock, so that connections on other event loops cannot leave it at an older count.
    func admit() -> Bool {
        let admitted = count.withLockedValue { count in
            guard count < maximum else { return false }
            count += 1
            open.record(count)
            return true
        }
        if !admitted { refused.increment() }
        return admitted
    }

    func closed() {
        count.withLockedValue { count in
            count -= 1
            open.record(count)
        }
    }
}

/// A connection beyond the listener's maximum, closed at once.
struct ConnectionLimitReached: Error {}

/// A child channel counted by a ``ConnectionGate``: one it refuses is closed before `base` sets it up.
struct CountedChannel<Base: ServerChildChannel>: ServerChildChannel {
    let base: Base
    let gate: ConnectionGate

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Base.Value> {
        guard gate.admit() else {
            // NIO's server channel drops a child whose setup failed without closing it.
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(ConnectionLimitReached())
        }
        channel.closeFuture.whenComplete { [gate] _ in gate.closed() }
        return base.setup(channel: channel, logger: logger)
    }

    func handle(value: Base.Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// A Hummingbird HTTP/1 channel with an ``HTTPConnectionGuard`` in its pipeline: one handler before the
/// HTTP decoder sees bytes arrive, one after it (among the channel's additional handlers, as
/// ``HTTPConnectionGuard/PartsHandler``) sees request and response parts.
struct GuardedChannel<Inner: ServerChildChannel>: ServerChildChannel {
    let inner: Inner
    let limits: HTTPConnectionLimits
    let metrics: HTTPConnectionGuard.Metrics

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Inner.Value> {
        let (limits, metrics, inner) = (self.limits, self.metrics, self.inner)
        return channel.eventLoop.makeCompletedFuture {
            let connection = HTTPConnectionGuard(limits: limits, metrics: metrics)
            try channel.pipeline.syncOperations.addHandler(HTTPConnectionGuard.BytesHandler(connection: connection), position: .first)
        }.flatMap {
            inner.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Inner.Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// One connection's request timers and body drain, confined to its event loop.
final class HTTPConnectionGuard {
    struct Metrics: Sendable {
        let idle = Counter(label: "aesel_http_timeouts_total", dimensions: [("phase", "idle")])
        let header = Counter(label: "aesel_http_timeouts_total", dimensions: [("phase", "header")])
        let body = Counter(label: "aesel_http_timeouts_total", dimensions: [("phase", "body")])
        let drain = Counter(label: "aesel_http_timeouts_total", dimensions: [("phase", "drain")])
        let write = Counter(label: "aesel_http_timeouts_total", dimensions: [("phase", "write")])
    }

    enum Phase {
        /// No request on the wire; `bytesArrived` once the next one has begun.
        case waiting(bytesArrived: Bool)
        /// The head is in, the body is arriving.
        case readingBody
        /// The request is in; the server is answering (no timer: the work is the server's).
        case answering
        /// Answered before the body ended: the rest is read and thrown away.
        case draining(bytesLeft: Int)
        /// Past the drain's bounds: output is shut, input discarded until the client goes.
        case lingering
        /// A WebSocket now: no request timers; a client that reads nothing is still closed.
        case upgraded
    }

    private let limits: HTTPConnectionLimits
    private let metrics: Metrics
    private var phase = Phase.waiting(bytesArrived: false)
    private var timer: Scheduled<Void>?
    /// When the current request's body must have ended: its head's arrival plus `bodyTimeout`.
    private var bodyDeadline = NIODeadline.uptimeNanoseconds(0)
    /// Runs while the socket is not writable: a client that reads nothing is closed after `idleTimeout`.
    private var writeStall: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(limits: HTTPConnectionLimits, metrics: Metrics) {
        self.limits = limits
        self.metrics = metrics
    }

    private func arm(_ delay: TimeAmount, _ counter: Counter) {
        timer?.cancel()
        guard let context else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: delay) {
            counter.increment()
            loopBound.value.timedOut()
        }
    }

    /// A draining body has `drainTimeout` for its next part, and no longer than its body's deadline.
    private func armDrain() {
        arm(max(.zero, min(limits.drainTimeout, bodyDeadline - .now())), metrics.drain)
    }

    private func timedOut() {
        timer = nil
        guard let context else { return }
        if case .draining = phase {
            linger(context)
        } else {
            context.close(promise: nil)
        }
    }

    /// Stops answering, throws away what the client still sends for a moment, then closes: a client
    /// blocked writing its body gets to read the answer instead of a reset.
    private func linger(_ context: ChannelHandlerContext) {
        phase = .lingering
        context.close(mode: .output, promise: nil)
        timer?.cancel()
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
        context.read()
    }

    fileprivate func active(_ context: ChannelHandlerContext) {
        self.context = context
        arm(limits.idleTimeout, metrics.idle)
    }

    fileprivate func inactive() {
        timer?.cancel()
        timer = nil
        writeStall?.cancel()
        writeStall = nil
        context = nil
    }

    fileprivate func writabilityChanged(_ writable: Bool) {
        writeStall?.cancel()
        writeStall = nil
        guard !writable, let context else { return }
        let channel = context.channel
        let counter = metrics.write
        writeStall = context.eventLoop.scheduleTask(in: limits.idleTimeout) {
            counter.increment()
            channel.close(promise: nil)
        }
    }

    fileprivate func upgraded() {
        phase = .upgraded
        timer?.cancel()
        timer = nil
    }

    fileprivate func bytesArrived(_ count: Int) {
        if case .waiting(bytesArrived: false) = phase {
            phase = .waiting(bytesArrived: true)
            arm(limits.headerTimeout, metrics.header)
        }
    }

    /// Whether the part goes on up the pipeline.
    fileprivate func read(_ part: HTTPRequestPart) -> Bool {
        switch (part, phase) {
        case (_, .lingering):
            return false
        case (.head, _):
            phase = .readingBody
            bodyDeadline = .now() + limits.bodyTimeout
            arm(limits.bodyTimeout, metrics.body)
            return true
        case (.body(let buffer), .draining(let bytesLeft)):
            let left = bytesLeft - buffer.readableBytes
            if left < 0, let context {
                metrics.drain.increment()
                linger(context)
            } else {
                phase = .draining(bytesLeft: left)
                armDrain()
            }
            return false
        case (.body, _):
            return true
        case (.end, .draining):
            phase = .waiting(bytesArrived: false)
            arm(limits.idleTimeout, metrics.idle)
            return true
        case (.end, _):
            phase = .answering
            timer?.cancel()
            timer = nil
            return true
        }
    }

    fileprivate func wrote(_ part: HTTPResponsePart) {
        guard case .end = part else { return }
        switch phase {
        case .readingBody:
            phase = .draining(bytesLeft: limits.drainLimit)
            armDrain()
        case .answering:
            phase = .waiting(bytesArrived: false)
            arm(limits.idleTimeout, metrics.idle)
        case .waiting, .draining, .lingering, .upgraded:
            break
        }
    }

    /// Whether to read on by itself: while draining or lingering nobody above asks for more.
    fileprivate var readsByItself: Bool {
        switch phase {
        case .draining, .lingering: true
        default: false
        }
    }

    /// Before the HTTP decoder: notes that bytes arrived, and keeps reading while draining.
    final class BytesHandler: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        typealias OutboundIn = ByteBuffer

        let connection: HTTPConnectionGuard

        init(connection: HTTPConnectionGuard) {
            self.connection = connection
        }

        func handlerAdded(context: ChannelHandlerContext) {
            if context.channel.isActive { connection.active(context) }
        }

        func channelActive(context: ChannelHandlerContext) {
            connection.active(context)
            context.fireChannelActive()
        }

        func channelInactive(context: ChannelHandlerContext) {
            connection.inactive()
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            connection.bytesArrived(Self.unwrapInboundIn(data).readableBytes)
            context.fireChannelRead(data)
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            context.fireChannelReadComplete()
            if connection.readsByItself { context.read() }
        }

        func channelWritabilityChanged(context: ChannelHandlerContext) {
            connection.writabilityChanged(context.channel.isWritable)
            context.fireChannelWritabilityChanged()
        }
    }

    /// After the HTTP decoder: request and response parts move the phase; drained parts stop here. It
    /// finds its connection's guard in the ``BytesHandler`` when added.
    final class PartsHandler: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart
        typealias OutboundIn = HTTPResponsePart
        typealias OutboundOut = HTTPResponsePart

        private var connection: HTTPConnectionGuard?

        func handlerAdded(context: ChannelHandlerContext) {
            connection = try? context.pipeline.syncOperations.handler(type: BytesHandler.self).connection
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if connection?.read(Self.unwrapInboundIn(data)) ?? true { context.fireChannelRead(data) }
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            connection?.wrote(Self.unwrapOutboundIn(data))
            context.write(data, promise: promise)
        }
    }

    /// The connection of `channel` became a WebSocket: its request timers stop.
    static func upgraded(_ channel: any Channel) {
        channel.eventLoop.execute {
            (try? channel.pipeline.syncOperations.handler(type: BytesHandler.self))?.connection.upgraded()
        }
    }
}

@available(*, unavailable)
extension HTTPConnectionGuard: Sendable {}
