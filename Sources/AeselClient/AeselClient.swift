public import AeselModel
import AeselSealing
import AeselWire
public import NIOCore
import NIOPosix
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A device's connection to one scene: it registers through the gateway, sends object updates over UDP
/// to the scene's CLyman endpoint, and receives the updates of the scene's other devices.
///
/// It knows its pair is alive whether or not anything happens in the scene: while it hears nothing it
/// sends keepalives (docs/protocol.md) every ``AeselClientConfiguration/keepaliveInterval``, which the
/// pair's CLyman answers. It fails over by itself: when the pair a scene moved to tells it so (a
/// `SceneMovedNotice`, to binary-format devices), or when the pair stays silent, keepalives unanswered,
/// for ``AeselClientConfiguration/silenceTimeout``, it asks the gateway for the scene's endpoint
/// (`GET /v1/scene/{key}/endpoint`, with `?failed=HOST:PORT` after a silence) and switches to it.
/// Call ``close()`` when done: it deregisters the device.
public final class AeselClient: Sendable {
    public let configuration: AeselClientConfiguration
    /// Events from the other devices of the scene, newest kept when the consumer falls behind (1024).
    /// Iterate from one task only; the stream ends on ``close()``.
    public let updates: AsyncStream<ObjectEvent>
    /// The local UDP address the client receives on (and sends from).
    public let localAddress: SocketAddress
    /// The epoch of this client's numbered events: the Unix time it connected, so that a device that
    /// restarts and counts from 1 again is not stale against its previous run (docs/protocol.md).
    public let epoch = UInt32(truncatingIfNeeded: time(nil))

    private let channel: any Channel
    private let gateway: Gateway
    private let shared: Shared

    /// The UDP endpoint the client currently sends to.
    public var endpoint: SocketAddress { shared.state.withLockedValue { $0.endpoint } }
    /// How many times the client switched endpoints.
    public var failovers: Int { shared.state.withLockedValue { $0.failovers } }
    /// Datagrams received that were not object or property updates, notices or answers to the client's
    /// keepalives (e.g. the JSON of HTTP transactions).
    public var skippedDatagrams: Int { shared.state.withLockedValue { $0.skipped } }
    /// How many times the client told the gateway that its pair was silent (`?failed=`).
    public var failedReports: Int { shared.state.withLockedValue { $0.failedReports } }
    /// The round trip of the newest keepalive the pair answered; nil before the first answer.
    public var keepaliveRoundTrip: Duration? { shared.state.withLockedValue { $0.keepaliveRoundTrip } }

    /// Binds a UDP socket on `bindHost`, registers the device and starts listening.
    public static func connect(_ configuration: AeselClientConfiguration) async throws -> AeselClient {
        let (updates, continuation) = AsyncStream.makeStream(of: ObjectEvent.self, bufferingPolicy: .bufferingNewest(1024))
        let shared = Shared(continuation: continuation)
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.so_rcvbuf), value: 1 << 20)
            // One byte over the limit, so an oversized datagram reads as oversized rather than cut to size.
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Receiver(shared: shared, sceneKey: configuration.sceneKey))
                }
            }
            .bind(host: configuration.bindHost, port: 0).get()
        do {
            guard let local = channel.localAddress, let port = local.port else {
                throw AeselClientError(.invalidAnswer, "the UDP socket has no local port")
            }
            let gateway = try Gateway(configuration)
            let (endpoint, session) = try await gateway.register(
                deviceKey: configuration.deviceKey, host: configuration.bindHost, port: port, format: configuration.format
            )
            shared.state.withLockedValue { state in
                state.endpoint = endpoint
                state.session = session
            }
            let client = AeselClient(configuration, updates: updates, local: local, channel: channel, gateway: gateway, shared: shared)
            client.startWatchdog()
            shared.state.withLockedValue { $0.followMove = { [weak client] in Task { await client?.followMove() } } }
            return client
        } catch {
            continuation.finish()
            try? await channel.close()
            throw error
        }
    }

    private init(_ configuration: AeselClientConfiguration, updates: AsyncStream<ObjectEvent>, local: SocketAddress, channel: any Channel, gateway: Gateway, shared: Shared) {
        self.configuration = configuration
        self.updates = updates
        self.localAddress = local
        self.channel = channel
        self.gateway = gateway
        self.shared = shared
    }

    /// Sends `event` to the current endpoint without waiting. The sender device key is set to this
    /// device's, an empty scene key to the client's scene, and a numbered event's missing epoch to
    /// ``epoch``. Dropped if the socket's send buffer is full or the client is closed.
    public func send(_ event: ObjectEvent) {
        var event = event
        if event.sceneKey.isEmpty { event.sceneKey = configuration.sceneKey }
        if event.sequence != 0, event.epoch == 0 { event.epoch = epoch }
        event.senderDeviceKey = configuration.deviceKey
        let (destination, session): (SocketAddress?, DeviceSession?) = shared.state.withLockedValue { state in
            state.closed ? (nil, nil) : (state.endpoint, state.session)
        }
        guard let destination, channel.isWritable else { return }
        var datagram = EventCodec.encode(event, as: configuration.format, allocator: channel.allocator)
        if let session { datagram = session.seal(datagram, allocator: channel.allocator) }
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: destination, data: datagram), promise: nil)
    }

    /// Asks the gateway for the scene's endpoint and switches to it if it changed.
    public func refreshEndpoint() async throws {
        guard !shared.state.withLockedValue({ $0.closed }) else { throw AeselClientError(.closed, "the client is closed") }
        adopt(try await gateway.endpoint(failed: nil, timeout: .seconds(10)))
    }

    /// Deregisters the device (best effort) and closes the socket; ends ``updates``. Idempotent.
    public func close() async {
        let wasOpen = shared.state.withLockedValue { state in
            defer {
                state.closed = true
                state.watchdog?.cancel()
                state.watchdog = nil
            }
            return !state.closed
        }
        guard wasOpen else { return }
        try? await gateway.deregister(deviceKey: configuration.deviceKey)
        try? await channel.close()
        shared.continuation.finish()
    }

    deinit {
        let open = shared.state.withLockedValue { state in
            defer { state.closed = true }
            state.watchdog?.cancel()
            return !state.closed
        }
        if open {
            channel.close(promise: nil)
            shared.continuation.finish()
        }
    }

    // MARK: Failover

    private func startWatchdog() {
        let interval = configuration.keepaliveInterval
        let timeout = configuration.silenceTimeout
        // Several looks per interval, so a keepalive or a question leaves at most a fifth of it late.
        let tick = max(min(interval, timeout) / 5, .milliseconds(5))
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: tick)
                guard let self else { return }
                await self.watchPair(keepaliveInterval: interval, silenceTimeout: timeout)
            }
        }
        shared.state.withLockedValue { $0.watchdog = task }
    }

    /// Sends a keepalive when the pair has been silent for `keepaliveInterval`, and asks the gateway for
    /// another endpoint when it stays silent for `silenceTimeout` although keepalives went out (at most
    /// once per timeout). Errors are ignored: the next look tries again.
    private func watchPair(keepaliveInterval: Duration, silenceTimeout: Duration) async {
        let (keepalive, failed) = shared.state.withLockedValue { state in
            state.watch(now: .now, keepaliveInterval: keepaliveInterval, silenceTimeout: silenceTimeout)
        }
        if let keepalive, channel.isWritable {
            let datagram = Keepalive.request(nonce: keepalive.nonce, as: configuration.format, allocator: channel.allocator)
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: keepalive.endpoint, data: datagram), promise: nil)
        }
        guard let failed else { return }
        let seconds = silenceTimeout.components.seconds
        let answer = try? await gateway.endpoint(failed: failed, timeout: .seconds(max(2, seconds)))
        if let answer { adopt(answer) }
        finishAsking()
    }

    /// The scene's pair announced that the scene moved to it: ask the gateway for the endpoint now rather
    /// than after a silence. The notice only prompts the question; the answer comes from the gateway.
    private func followMove() async {
        let start: Bool = shared.state.withLockedValue { state in
            guard !state.closed else { return false }
            // A question already on its way may have left before the move: ask again when it is back.
            guard !state.asking else {
                state.followPending = true
                return false
            }
            state.asking = true
            return true
        }
        guard start else { return }
        if let answer = try? await gateway.endpoint(failed: nil, timeout: .seconds(2)) { adopt(answer) }
        finishAsking()
    }

    /// Ends a question to the gateway; follows a move notice that came meanwhile.
    private func finishAsking() {
        let again: Bool = shared.state.withLockedValue { state in
            state.asking = false
            defer { state.followPending = false }
            return state.followPending
        }
        if again { Task { await followMove() } }
    }

    private func adopt(_ endpoint: SocketAddress) {
        let now = ContinuousClock.now
        shared.state.withLockedValue { state in
            guard !state.closed, state.endpoint != endpoint else { return }
            state.endpoint = endpoint
            state.failovers += 1
            // The new endpoint gets a full window before it is judged silent.
            state.heard(at: now)
        }
    }
}

/// What the client and its channel handler share.
private final class Shared: Sendable {
    struct State {
        var endpoint = try! SocketAddress(ipAddress: "127.0.0.1", port: 0)
        var failovers = 0
        /// With sealed events: the device's session, which moves with it from pair to pair.
        var session: DeviceSession?
        var skipped = 0
        var failedReports = 0
        var lastReceived = ContinuousClock.now
        /// The first keepalive sent since the client last heard from the pair.
        var unansweredSince: ContinuousClock.Instant?
        var lastKeepalive: (nonce: UInt64, sentAt: ContinuousClock.Instant)?
        /// Counts up from a random start, so an answer forged off the path is unlikely to match.
        var nextNonce = UInt64.random(in: 0...(UInt64.max / 2))
        var keepaliveRoundTrip: Duration?
        var lastAsked: ContinuousClock.Instant?
        var asking = false
        /// A move notice came while a question was on its way.
        var followPending = false
        var closed = false
        var watchdog: Task<Void, Never>?
        /// Called when a pair announces that the scene moved to it.
        var followMove: (@Sendable () -> Void)?

        mutating func heard(at now: ContinuousClock.Instant) {
            lastReceived = now
            unansweredSince = nil
        }

        /// An answer to one of the last 16 keepalives is news from the pair; any other is not.
        mutating func keepaliveAnswered(nonce: UInt64, at now: ContinuousClock.Instant) -> Bool {
            guard let last = lastKeepalive, nonce <= last.nonce, last.nonce - nonce < 16 else { return false }
            if nonce == last.nonce { keepaliveRoundTrip = now - last.sentAt }
            heard(at: now)
            return true
        }

        /// What the watchdog does now: send a keepalive (to the endpoint, with the nonce), and ask the
        /// gateway (naming the silent endpoint) when nothing was heard for `silenceTimeout` although a
        /// keepalive has had `keepaliveInterval` to be answered.
        mutating func watch(
            now: ContinuousClock.Instant, keepaliveInterval: Duration, silenceTimeout: Duration
        ) -> (keepalive: (endpoint: SocketAddress, nonce: UInt64)?, failed: SocketAddress?) {
            guard !closed else { return (nil, nil) }
            var keepalive: (endpoint: SocketAddress, nonce: UInt64)?
            if now - lastReceived >= keepaliveInterval, lastKeepalive.map({ now - $0.sentAt >= keepaliveInterval }) ?? true {
                keepalive = (endpoint, nextNonce)
                lastKeepalive = (nextNonce, now)
                nextNonce += 1
                if unansweredSince == nil { unansweredSince = now }
            }
            guard let since = unansweredSince, now - lastReceived >= silenceTimeout, now - since >= keepaliveInterval, !asking,
                lastAsked.map({ now - $0 >= silenceTimeout }) ?? true
            else { return (keepalive, nil) }
            lastAsked = now
            asking = true
            failedReports += 1
            return (keepalive, endpoint)
        }
    }

    let state = NIOLockedValueBox(State())
    let continuation: AsyncStream<ObjectEvent>.Continuation

    init(continuation: AsyncStream<ObjectEvent>.Continuation) {
        self.continuation = continuation
    }
}

/// Decodes each datagram and yields the updates; anything else is counted as skipped.
private final class Receiver: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let shared: Shared
    private let sceneKey: String

    init(shared: Shared, sceneKey: String) {
        self.shared = shared
        self.sceneKey = sceneKey
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var envelope = unwrapInboundIn(data)
        let now = ContinuousClock.now
        // Keepalive answers are never sealed; everything else from a sealing pair is, and what does not
        // open (replayed, forged, another session's) is skipped and is no sign of life.
        if let session = shared.state.withLockedValue({ $0.session }), Keepalive.parse(envelope.data) == nil {
            guard case .opened(let plaintext) = session.open(envelope.data, allocator: context.channel.allocator) else {
                shared.state.withLockedValue { $0.skipped += 1 }
                return
            }
            envelope.data = plaintext
        }
        if let moved = SceneMovedNotice.sceneKey(in: envelope.data) {
            let follow = shared.state.withLockedValue { state in
                state.heard(at: now)
                return state.followMove
            }
            if moved == sceneKey { follow?() }
            return
        }
        if let keepalive = Keepalive.parse(envelope.data) {
            shared.state.withLockedValue { state in
                guard case .answer(let nonce, _) = keepalive, state.keepaliveAnswered(nonce: nonce, at: now) else {
                    state.skipped += 1
                    return
                }
            }
            return
        }
        var event = try? EventCodec.decode(envelope.data)
        event?.source = envelope.remoteAddress
        shared.state.withLockedValue { state in
            state.heard(at: now)
            if event == nil { state.skipped += 1 }
        }
        if let event { shared.continuation.yield(event) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP port unreachable and the like: UDP is lossy; the failover watchdog handles dead endpoints.
    }
}
