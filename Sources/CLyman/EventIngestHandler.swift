import CoreMetrics
import AeselModel
public import AeselSealing
import AeselStore
public import AeselStream
import AeselWire
public import NIOCore

/// CLyman's UDP ingest: decode each datagram once, drop what is bad, outside the scene it names, aimed at
/// an object another device has locked, or stale; forward the rest to the change stream, then hand it to
/// the write-behind persister. Forward first, persist after. Keyframe and action updates go to
/// ``EventActionEdits`` instead, which stores them and then forwards them.
///
/// With ``EventSessions`` (sealed events) only sealed datagrams are read: each is opened with the session
/// its header names, whose device is then the event's sender, and must name that session's scene.
///
/// Lives on the thread that reads the event port (``EventPort``; in tests, a channel's loop); its state is
/// confined there, so it needs no lock. Events of a scene whose members are loading wait here, in order,
/// and go on when the load ends; so do datagrams whose session is being read from the store.
public final class EventIngestHandler: ChannelInboundHandler {
    public typealias InboundIn = AddressedEnvelope<ByteBuffer>

    /// Events held for one loading scene, and for all of them; more are dropped as `scene_loading`.
    static let maximumHeldPerScene = 256
    static let maximumHeld = 4096

    /// Set by ``attach(_:)`` before the channel reads its first datagram.
    private var stream: (any ChangeStream)!
    private let writeBehind: TransformWriteBehind
    private let actionEdits: EventActionEdits
    /// The UDP port's counters; ``read(webSocketMessage:deviceKey:sceneKey:)`` swaps in the WebSocket ones.
    private var metrics: IngestMetrics
    private var otherMetrics: IngestMetrics
    private let locks: ObjectLocks
    private let senders: any SenderDirectory
    private let members: SceneMembers
    private let sessions: EventSessions?
    /// The original's AES-256-CBC mode (device to CLyman key), instead of sealed events.
    private let originalCipher: OriginalEventCipher?
    private let allocator = ByteBufferAllocator()
    private var sequences = ObjectSequences()
    private var held: [String: [ObjectEvent]] = [:]
    private var heldSealed: [UInt64: [AddressedEnvelope<ByteBuffer>]] = [:]
    /// Events and sealed datagrams held, together.
    private var heldCount = 0
    private var keepaliveLimiter = RateLimiter.keepaliveAnswers
    /// When the datagram being handled was read: its events' `receivedAt`, and the clock of its checks.
    private var readAt = NIODeadline.now()
    /// Set by ``start(post:reply:)``.
    private var reply: Reply?
    private var rateLimits: DeviceRateLimits

    /// The stream comes later, with ``attach(_:)``: it is made once the channel is bound, as it announces
    /// the bound address. The channel must not read before (`autoRead` off until then).
    public init(
        writeBehind: TransformWriteBehind,
        actionEdits: EventActionEdits,
        metrics: IngestMetrics,
        locks: ObjectLocks,
        senders: any SenderDirectory,
        members: SceneMembers,
        sessions: EventSessions? = nil,
        originalCipher: OriginalEventCipher? = nil,
        rateLimit: EventRateLimit = .none,
        webSocketMetrics: IngestMetrics = IngestMetrics(transport: .webSocket)
    ) {
        otherMetrics = webSocketMetrics
        rateLimits = DeviceRateLimits(perSecond: rateLimit.perSecond, burst: rateLimit.burst)
        self.sessions = sessions
        self.originalCipher = originalCipher
        self.writeBehind = writeBehind
        self.actionEdits = actionEdits
        self.metrics = metrics
        self.locks = locks
        self.senders = senders
        self.members = members
    }

    public func attach(_ stream: any ChangeStream) {
        self.stream = stream
        actionEdits.attach(stream)
    }

    /// Runs a job on the thread that reads the datagrams, after the datagram being read.
    public typealias Post = @Sendable (@escaping @Sendable () -> Void) -> Void
    /// Sends a keepalive answer to the address it is for; false if the socket cannot take it now.
    public typealias Reply = (ByteBuffer, SocketAddress) -> Bool

    /// Wires the handler to the thread that reads its datagrams: scene and session load answers are
    /// installed there (`post`), before any later datagram is checked, and keepalive answers go out with
    /// `reply`. In a channel, `handlerAdded` does it with the channel's loop.
    public func start(post: @escaping Post, reply: @escaping Reply) {
        let handler = ThreadConfined(self)
        self.reply = reply
        members.onLoad { sceneKey, keys in
            post { handler.value.finishLoad(sceneKey, keys: keys) }
        }
        sessions?.onLoad { keyID in
            post { handler.value.finishSessionLoad(keyID) }
        }
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        let eventLoop = context.eventLoop
        let channel = context.channel
        start(post: { job in eventLoop.execute(job) }) { answer, address in
            guard channel.isWritable else { return false }
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: answer), promise: nil)
            return true
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        read(Self.unwrapInboundIn(data))
    }

    /// One datagram from the event port, on the thread that reads them.
    public func read(_ envelope: AddressedEnvelope<ByteBuffer>) {
        readAt = .now()
        metrics.received.increment()
        if answerKeepalive(envelope) { return }
        if let sessions {
            receiveSealed(envelope, sessions: sessions, holdIfLoading: true)
        } else if let originalCipher {
            guard let plaintext = originalCipher.decrypt(envelope.data, allocator: allocator) else {
                metrics.dropped(.notDecrypted)
                return
            }
            receive(plaintext, from: envelope.remoteAddress, sender: .address(envelope.remoteAddress), provenBy: nil)
        } else {
            receive(envelope.data, from: envelope.remoteAddress, sender: .address(envelope.remoteAddress), provenBy: nil)
        }
    }

    /// One message of a WebSocket device, whose connection was authenticated for `sceneKey`: an event
    /// in either format, checked as a datagram's is from the rate limit on, with `deviceKey` as its sender.
    /// Counted in the WebSocket metrics. On the thread that reads the datagrams (``EventPort/post(_:)``).
    public func read(webSocketMessage message: ByteBuffer, deviceKey: String, sceneKey: String) {
        swap(&metrics, &otherMetrics)
        defer { swap(&metrics, &otherMetrics) }
        readAt = .now()
        metrics.received.increment()
        receive(message, from: nil, sender: .webSocket(deviceKey: deviceKey), provenBy: (sceneKey, deviceKey))
    }

    /// - Parameters:
    ///   - sender: whose allowance and sequence numbers the event's are.
    ///   - proof: the scene and device a session or an authenticated connection vouches for: the event
    ///     must name that scene, and its sender is that device.
    private func receive(_ datagram: ByteBuffer, from source: SocketAddress?, sender: EventSender, provenBy proof: (sceneKey: String, deviceKey: String)?) {
        // After the tag is checked, so that forged datagrams cannot spend a device's allowance.
        let (allowed, evicted) = rateLimits.allow(sender, now: readAt)
        if evicted > 0 { metrics.evicted(evicted, from: .rateLimits) }
        guard allowed else {
            metrics.rateLimited.increment()
            return
        }
        var event: ObjectEvent
        do {
            event = try EventCodec.decode(datagram)
        } catch {
            metrics.dropped(error)
            return
        }
        event.source = source
        event.receivedAt = readAt.uptimeNanoseconds
        if let proof {
            guard event.sceneKey == proof.sceneKey else {
                metrics.dropped(.wrongScene)
                return
            }
            // The session or connection proves who sent it, whatever a binary event's own device key says.
            event.senderDeviceKey = proof.deviceKey
        }
        handle(event, now: readAt)
    }

    private func receiveSealed(_ envelope: AddressedEnvelope<ByteBuffer>, sessions: EventSessions, holdIfLoading: Bool) {
        guard envelope.data.readableBytes <= EventCodec.maximumDatagramSize + SealedDatagram.overhead else {
            metrics.dropped(.oversized)
            return
        }
        guard let header = SealedDatagram.header(of: envelope.data), header.direction == .toPair else {
            metrics.dropped(.notSealed)
            return
        }
        // The session is installed before its load answer reaches this loop: until then later datagrams
        // queue behind the held ones, or they would overtake them and make them stale.
        if holdIfLoading, heldSealed[header.keyID] != nil {
            holdSealed(envelope, keyID: header.keyID)
            return
        }
        switch sessions.lookup(header.keyID) {
        case .found(let opener):
            switch opener.open(envelope.data, header: header, allocator: allocator) {
            case .opened(let plaintext):
                let cipher = opener.cipher
                receive(plaintext, from: envelope.remoteAddress, sender: .session(cipher.keyID), provenBy: (cipher.sceneKey, cipher.deviceKey))
            case .replayed: metrics.dropped(.replayed)
            case .tooOld: metrics.dropped(.tooOld)
            case .notAuthentic: metrics.dropped(.notAuthentic)
            }
        case .loading where holdIfLoading:
            holdSealed(envelope, keyID: header.keyID)
        case .loading, .unknown:
            metrics.dropped(.unknownSession)
        }
    }

    /// Answers a device's keepalive (docs/protocol.md) to the address it came from, so the answer follows
    /// the device's NAT path back; returns false when the datagram is no keepalive. An answer is never
    /// larger than its request, and answers that come in are dropped, never answered.
    private func answerKeepalive(_ envelope: AddressedEnvelope<ByteBuffer>) -> Bool {
        guard let keepalive = Keepalive.parse(envelope.data) else { return false }
        guard case .request(let nonce, let format) = keepalive else {
            metrics.malformedKeepalives.increment()
            return true
        }
        guard keepaliveLimiter.allow(now: readAt), let reply, reply(Keepalive.answer(nonce: nonce, as: format, allocator: allocator), envelope.remoteAddress) else {
            metrics.keepalivesLimited.increment()
            return true
        }
        metrics.keepalives.increment()
        return true
    }

    private func handle(_ event: ObjectEvent, now: NIODeadline) {
        switch members.check(objectKey: event.objectKey, kind: event.kind, sceneKey: event.sceneKey, now: now) {
        case .member:
            accept(event, now: now)
        case .notMember:
            metrics.notInScene.increment()
        case .hold:
            hold(event)
        case .overloaded:
            metrics.sceneLoading.increment()
        }
    }

    /// An event of the scene it names: refused if locked by another device or stale, else forwarded.
    private func accept(_ event: ObjectEvent, now: NIODeadline) {
        // Before the staleness check, so that a refused event cannot advance the sequence.
        if event.kind == .objectUpdate, let owner = locks.owner(of: event.objectKey), owner != sender(of: event) {
            metrics.locked.increment()
            return
        }
        if event.sequence != 0 {
            let (accepted, evicted) = sequences.accept(
                objectKey: event.objectKey, from: event.source.map(EventSender.address) ?? .webSocket(deviceKey: event.senderDeviceKey), epoch: event.epoch, sequence: event.sequence, now: now
            )
            if evicted > 0 { metrics.evicted(evicted, from: .sequences) }
            guard accepted else {
                metrics.stale.increment()
                return
            }
        }
        if event.actions != nil {
            actionEdits.submit(event)
            return
        }
        stream.publish(.update(event))
        writeBehind.record(event)
    }

    private func hold(_ event: ObjectEvent) {
        guard heldCount < Self.maximumHeld else {
            metrics.sceneLoading.increment()
            return
        }
        var events = held.removeValue(forKey: event.sceneKey) ?? []
        if events.count < Self.maximumHeldPerScene {
            events.append(event)
            heldCount += 1
        } else {
            metrics.sceneLoading.increment()
        }
        held[event.sceneKey] = events
    }

    private func holdSealed(_ envelope: AddressedEnvelope<ByteBuffer>, keyID: UInt64) {
        var datagrams = heldSealed.removeValue(forKey: keyID) ?? []
        if heldCount < Self.maximumHeld, datagrams.count < Self.maximumHeldPerScene {
            datagrams.append(envelope)
            heldCount += 1
        } else {
            metrics.sceneLoading.increment()
        }
        heldSealed[keyID] = datagrams
    }

    /// A session's read ended: what waited for it is read now, in order, and dropped if it is still
    /// unknown (a failed read is not retried for held datagrams, or an outage would loop on reads).
    private func finishSessionLoad(_ keyID: UInt64) {
        guard let datagrams = heldSealed.removeValue(forKey: keyID), let sessions else { return }
        heldCount -= datagrams.count
        // Held datagrams keep no time of their own: they count from their release.
        readAt = .now()
        for envelope in datagrams {
            receiveSealed(envelope, sessions: sessions, holdIfLoading: false)
        }
    }

    private func finishLoad(_ sceneKey: String, keys: SceneMemberKeys?) {
        members.finishLoad(sceneKey: sceneKey, keys: keys)
        guard let events = held.removeValue(forKey: sceneKey) else { return }
        heldCount -= events.count
        guard keys != nil else {
            // The store failed; held events are not retried, or an outage would loop on loads.
            metrics.sceneLoading.increment(by: events.count)
            return
        }
        let now = NIODeadline.now()
        for event in events {
            handle(event, now: now)
        }
    }

    /// The sealed event's session device or the WebSocket device (an event without a source), or else
    /// the registered device at the datagram's source address: a device key named in a plaintext binary
    /// event is not proof of identity, so locks go by address.
    private func sender(of event: ObjectEvent) -> String? {
        guard sessions == nil, let source = event.source else { return event.senderDeviceKey }
        return senders.deviceKey(in: event.sceneKey, at: source)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A UDP read error (e.g. ICMP port unreachable reported on the socket) must not close the channel.
        readFailed()
    }

    /// A read of the event port failed: counted, and reading goes on.
    public func readFailed() {
        metrics.readErrors.increment()
    }
}
