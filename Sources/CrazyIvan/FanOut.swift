public import AeselModel
import AeselSealing
public import AeselStore
public import AeselStream
import CoreMetrics
import AeselWire
public import NIOCore

/// CrazyIvan's UDP fan-out: every event goes to each device of its scene but the sender, encoded once per
/// format, all copies sent with one `sendmmsg`, on the thread the event arrived on. No lock is held while
/// sending; a scene's order across a load is kept by the cache (``SceneDeviceCache/nextReplay(sceneKey:)``),
/// unless it forwards while loading.
public final class FanOut: ChangeStreamSubscriber {
    public struct Configuration: Sendable {
        /// The original echoed events to their sender; Aesel does not, unless asked.
        public var echoToSender: Bool
        /// Sealed events: every copy is sealed for its device, and a device without a session key (one
        /// registered while the pair ran plaintext) receives nothing.
        public var sealed: Bool
        /// The original's AES-256-CBC mode: every copy encrypted with this one key (CrazyIvan to devices).
        public var originalCipher: OriginalEventCipher?

        public init(echoToSender: Bool = false, sealed: Bool = false, originalCipher: OriginalEventCipher? = nil) {
            self.echoToSender = echoToSender
            self.sealed = sealed
            self.originalCipher = originalCipher
        }
    }

    private let socket: FanOutSocket
    /// The event path's loop, where a finished load replays its scene's held events.
    private let eventLoop: any EventLoop
    private let allocator = ByteBufferAllocator()
    let cache: SceneDeviceCache
    private let store: any AeselStore
    private let configuration: Configuration
    private let metrics: FanOutMetrics
    /// The scenes' WebSocket devices and observers, which receive every event after the UDP devices.
    public let webSockets = WebSocketFanOut()

    public init(
        socket: FanOutSocket, eventLoop: any EventLoop, cache: SceneDeviceCache, store: any AeselStore, configuration: Configuration,
        metrics: FanOutMetrics
    ) {
        self.socket = socket
        self.eventLoop = eventLoop
        self.cache = cache
        self.store = store
        self.configuration = configuration
        self.metrics = metrics
    }

    /// Runs on the calling thread: the UDP event loop, a stream's receive thread or an HTTP handler.
    public func deliver(_ event: ChangeEvent) {
        let receivedAt = event.receivedAt ?? NIODeadline.now().uptimeNanoseconds
        switch cache.lookup(event) {
        case .deliver(let recipients):
            send(event, to: recipients, receivedAt: receivedAt)
        case .queued:
            break
        case .startLoad:
            startLoad(sceneKey: event.sceneKey)
        case .deliverAndLoad(let known):
            send(event, to: known, receivedAt: receivedAt)
            startLoad(sceneKey: event.sceneKey)
        case .unknownScene:
            metrics.unknownScene.increment()
        case .pendingOverflow:
            metrics.pendingOverflow.increment()
        }
    }

    /// A device joined `sceneKey`: it receives the scene's next event. An uncached scene is loaded now, so
    /// that its first events do not wait for the store.
    public func registered(_ recipient: Recipient, in sceneKey: String) {
        cache.apply(.register(recipient), sceneKey: sceneKey)
        if cache.beginLoad(sceneKey: sceneKey) { startLoad(sceneKey: sceneKey) }
    }

    /// Why the fan-out socket cannot send to `address`, or nil if it can. A send the kernel refuses would
    /// close the socket for every scene, so such addresses are refused at registration.
    public func unreachable(_ address: SocketAddress) -> String? {
        let local = socket.localAddress
        switch (address, local) {
        case (.v4, .v4):
            let octets = (address.ipAddress ?? "").split(separator: ".").compactMap { Int($0) }
            guard octets.count == 4 else { return "not an IPv4 address" }
            if octets[0] == 0 || octets[0] >= 224 { return "not a unicast address" }
            if octets == [255, 255, 255, 255] { return "not a unicast address" }
            if local.ipAddress == "127.0.0.1", octets[0] != 127 { return "the server listens on loopback only" }
            return nil
        case (.v6, .v6):
            return address.ipAddress == "::" ? "not a unicast address" : nil
        default:
            return "the server's event socket is \(local.protocol == .inet ? "IPv4" : "IPv6") only"
        }
    }

    /// Tells the scene's binary-format devices that the scene moved to this pair (`SceneMovedNotice`), so
    /// that they ask the gateway for their new endpoint at once. JSON devices (the original's protocol)
    /// would not understand it; they find the new endpoint by asking the gateway themselves.
    public func announceMove(of sceneKey: String, to recipients: [Recipient]) {
        let notice = SceneMovedNotice.encode(sceneKey: sceneKey, allocator: allocator)
        let sealed = configuration.sealed
        let result = socket.send(to: recipients, payloads: (notice, nil)) { $0.format == .binary && (!sealed || $0.sealer != nil) ? 0 : nil }
        metrics.datagrams.increment(by: result.sent)
    }

    /// Loads scenes now rather than on their first event, e.g. those with locked objects, so that the
    /// sender of their first events is known.
    public func preload(_ sceneKeys: some Sequence<String>) {
        for sceneKey in sceneKeys where cache.beginLoad(sceneKey: sceneKey) { startLoad(sceneKey: sceneKey) }
    }

    /// Pins exactly `sceneKeys` in the cache, so that they never expire (``SceneDeviceCache/pin(_:)``), and
    /// loads those not cached yet; returns once they are loaded.
    public func pin(_ sceneKeys: Set<String>) async {
        for sceneKey in cache.pin(sceneKeys) where cache.beginLoad(sceneKey: sceneKey) { await load(sceneKey: sceneKey) }
    }

    /// A device left `sceneKey`: it receives nothing more, from this moment.
    public func deregistered(deviceKey: String, from sceneKey: String) {
        cache.apply(.deregister(deviceKey: deviceKey), sceneKey: sceneKey)
    }

    /// The device registered in `sceneKey` at `address`, if the scene is cached: how CLyman tells which
    /// device sent a JSON event.
    public func deviceKey(in sceneKey: String, at address: SocketAddress) -> String? {
        if let key = cache.deviceKey(in: sceneKey, at: address) { return key }
        preload([sceneKey])
        return nil
    }

    /// A scene was deleted: its devices receive nothing more.
    public func sceneDeleted(_ sceneKey: String) {
        cache.forget(sceneKey)
    }

    /// A scene was created: forget that it was unknown.
    public func sceneCreated(_ sceneKey: String) {
        cache.sceneCreated(sceneKey)
    }

    /// Transaction events go to every device of the scene in JSON; updates to all but their sender, in
    /// each device's format; then the same to the scene's WebSocket connections.
    /// `receivedAt`: when the event reached this process, where the relay histogram's time starts.
    private func send(_ event: ChangeEvent, to recipients: [Recipient], receivedAt: UInt64) {
        sendDatagrams(event, to: recipients, receivedAt: receivedAt)
        webSockets.deliver(event, echo: configuration.echoToSender, allocator: allocator)
    }

    private func sendDatagrams(_ event: ChangeEvent, to recipients: [Recipient], receivedAt: UInt64) {
        metrics.events.increment()
        let sealed = configuration.sealed
        let result: (wanted: Int, sent: Int)
        switch event {
        case .transaction(let transaction):
            // A record too large for one datagram (65,507 bytes, less what sealing adds) cannot be sent as an event.
            guard transaction.json.readableBytes <= 65_507 - (sealed ? SealedDatagram.overhead : 0) else {
                metrics.oversizedEvents.increment()
                return
            }
            let payload = configuration.originalCipher.map { $0.encrypt(transaction.json, allocator: allocator) } ?? transaction.json
            result = socket.send(to: recipients, payloads: (payload, nil)) { sealed && $0.sealer == nil ? nil : 0 }
        case .update(let update):
            // Encoded once per format the scene's devices use.
            var json = recipients.contains { $0.format == .json } ? EventCodec.encode(update, as: .json, allocator: allocator) : nil
            var binary = recipients.contains { $0.format == .binary } ? EventCodec.encode(update, as: .binary, allocator: allocator) : nil
            if let cipher = configuration.originalCipher {
                json = json.map { cipher.encrypt($0, allocator: allocator) }
                binary = binary.map { cipher.encrypt($0, allocator: allocator) }
            }
            guard let first = json ?? binary else { return }
            let echo = configuration.echoToSender
            result = socket.send(to: recipients, payloads: (first, binary)) { recipient in
                guard echo || !self.isSender(recipient, of: update), !sealed || recipient.sealer != nil else { return nil }
                return recipient.format == .json || json == nil ? 0 : 1
            }
        }
        metrics.datagrams.increment(by: result.sent)
        if result.sent < result.wanted { metrics.backpressure.increment(by: result.wanted - result.sent) }
        if result.sent > 0 { metrics.relay.recordNanoseconds(Int64(NIODeadline.now().uptimeNanoseconds &- receivedAt)) }
    }

    private func isSender(_ recipient: Recipient, of event: ObjectEvent) -> Bool {
        if !event.senderDeviceKey.isEmpty { return recipient.deviceKey == event.senderDeviceKey }
        return recipient.address == event.source
    }

    private func startLoad(sceneKey: String) {
        // Unstructured on purpose: the hot path cannot await. The task ends with the load.
        Task { await load(sceneKey: sceneKey) }
    }

    /// Loads a scene marked as loading from the store, then, on the event loop, installs it and sends what
    /// waited for it before any later event of the scene.
    private func load(sceneKey: String) async {
        let recipients: [Recipient]?
        do {
            if try await store.scene(key: sceneKey) == nil {
                recipients = nil
            } else {
                recipients = try await store.devices(inScene: sceneKey).compactMap { Recipient($0, inScene: sceneKey) }
            }
        } catch {
            metrics.loadFailures.increment()
            let dropped = cache.abandonLoad(sceneKey: sceneKey)
            metrics.unknownScene.increment(by: dropped.count)
            // A failed reload serves on with the devices the scene had.
            try? await eventLoop.submit { self.sendHeld(sceneKey: sceneKey) }.get()
            return
        }
        try? await eventLoop.submit {
            let unknown = self.cache.finishLoad(sceneKey: sceneKey, devices: recipients)
            if !unknown.isEmpty { self.metrics.unknownScene.increment(by: unknown.count) }
            self.sendHeld(sceneKey: sceneKey)
        }.get()
    }

    /// Sends a replaying scene's held events in order, until it is ready.
    private func sendHeld(sceneKey: String) {
        while let (events, recipients) = cache.nextReplay(sceneKey: sceneKey) {
            // A held event without a time of reading counts from its release.
            for event in events { send(event, to: recipients, receivedAt: event.receivedAt ?? NIODeadline.now().uptimeNanoseconds) }
        }
    }
}
