import NIOFoundationCompat
import AeselModel
import AeselSealing
import AeselWire
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Adrestia's health checks, end to end (DESIGN.md section 5). Each pair's probe scene,
/// `aesel-probe-<pair>`, has one device per Adrestia instance (`adrestia-probe@<instance>`): its
/// prober's receive socket. Each instance knows its own probes by their numbers. Every `probeInterval` a probe
/// event goes into the pair's CLyman UDP port and must come back out of its CrazyIvan, so a dead half, a
/// broken stream and a hung process all count as misses. Both halves' `/health` are checked over HTTP
/// too. Discovery is read every 200 ms. A pair with sealed events gives each registration a session, and
/// a sealed event's sender is its session's device, which never receives its own event: so the probe
/// sender registers as a device of its own (`adrestia-probe-sender@<instance>`, at the sending socket),
/// whose session seals the probes, while they come back sealed for the receiving device.
struct HealthProber: Service {
    /// The probe object's name, and the start of each instance's probe device key.
    static let probeName = "adrestia-probe"
    package static let probeScenePrefix = "aesel-probe-"

    let cluster: ClusterManager
    /// Where the probe sockets bind.
    let host: String
    /// The probe receiver's address as the pairs must send to it: `host` unless that is a wildcard.
    let advertisedHost: String
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger
    let sessions = ProbeSessions()

    func run() async throws {
        let (cluster, sessions) = (self.cluster, self.sessions)
        let receiver = try await DatagramBootstrap(group: eventLoopGroup)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ProbeAnswerHandler(cluster: cluster, sessions: sessions))
                }
            }
            .bind(host: host, port: 0).get()
        let sender = try await DatagramBootstrap(group: eventLoopGroup).bind(host: host, port: 0).get()
        defer {
            receiver.close(promise: nil)
            sender.close(promise: nil)
        }
        let ports = (receiver: receiver.localAddress?.port ?? 0, sender: sender.localAddress?.port ?? 0)
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await discover(ports: ports) }
                group.addTask { await probe(from: sender) }
                group.addTask { await checkHTTP() }
            }
        }
    }

    /// Reads discovery, registers the probe receiver with each pair not probed yet (all at once, so a
    /// dead pair does not hold up the others), and every 2 s moves scenes stranded on down pairs.
    private func discover(ports: (receiver: Int, sender: Int)) async {
        var round = 0
        while !Task.isCancelled {
            await cluster.refreshFromDiscovery()
            // The device key names the instance, known once its HTTP listener is bound.
            guard let instance = cluster.leadership.me?.instance else {
                try? await Task.sleep(for: .milliseconds(10))
                continue
            }
            await withTaskGroup(of: Void.self) { group in
                for status in cluster.snapshot where !status.probeRegistered {
                    group.addTask {
                        if let objectKey = await registerProbe(with: status.announcement, instance: instance, ports: ports) {
                            cluster.probeRegistered(pairID: status.announcement.id, announcement: status.announcement, objectKey: objectKey)
                        }
                    }
                }
            }
            round += 1
            if round % 10 == 0 { await cluster.sweepStrandedScenes() }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Registers this instance's probe receiver and sender in the pair's probe scene, in the pair's
    /// region, and returns the key of the scene's probe object, which it creates if there is none.
    private func registerProbe(with pair: PairAnnouncement, instance: String, ports: (receiver: Int, sender: Int)) async -> String? {
        let scene = Self.probeScenePrefix + pair.id
        var registered: [DeviceSession?] = []
        for (device, port) in [("\(Self.probeName)@\(instance)", ports.receiver), ("\(Self.probeName)-sender@\(instance)", ports.sender)] {
            let registration: [String: Any] = [
                "scenes": [["key": scene, "region": pair.region, "devices": [["key": device, "hostname": advertisedHost, "port": port, "format": "binary"]]]]
            ]
            guard let answer = await probeCall(pair, "\(pair.crazyIvanHTTP)/v1/scene/\(pathSegment(scene))/register", registration) else { return nil }
            let keyID = (answer["session_key_id"] as? NSNumber)?.uint64Value
            registered.append(DeviceSession(keyID: keyID, secret: answer["session_key"] as? String, sceneKey: scene, deviceKey: device))
        }
        sessions.set(receiver: registered[0], sender: registered[1], for: pair.id)
        let probeObject: [String: Any] = ["objects": [["name": Self.probeName, "scene": scene]], "num_records": 1]
        if let found = await probeCall(pair, "\(pair.clymanHTTP)/v1/object/query", probeObject), let key = Self.firstObjectKey(found) {
            return key
        }
        return await probeCall(pair, "\(pair.clymanHTTP)/v1/object", probeObject).flatMap(Self.firstObjectKey)
    }

    /// POSTs one of the probe's set-up calls; the answer's envelope, or nil when it is refused.
    private func probeCall(_ pair: PairAnnouncement, _ url: String, _ body: [String: Any]) async -> [String: Any]? {
        guard let data = try? JSONSerialization.data(withJSONObject: body) else { return nil }
        guard let (status, answer) = try? await clusterCall(.POST, url, json: data, timeout: .milliseconds(500)) else { return nil }
        let envelope = (try? JSONSerialization.jsonObject(with: Data(buffer: answer))) as? [String: Any]
        guard status == .ok, envelope?["err_code"] as? Int == ErrorCode.noError.rawValue else {
            logger.warning("probe set-up refused", metadata: ["aesel.pair": "\(pair.id)", "aesel.url": "\(url)", "aesel.answer": "\(String(buffer: answer))"])
            return nil
        }
        return envelope
    }

    private static func firstObjectKey(_ envelope: [String: Any]) -> String? {
        ((envelope["objects"] as? [[String: Any]])?.first?["key"] as? String)?.nonEmpty
    }

    /// Sends a round of probes every `probeInterval`. Numbers grow across restarts (microseconds since
    /// 1970 at start, plus the round) so CLyman never drops a probe as stale.
    private func probe(from sender: any Channel) async {
        let base = UInt64(Date().timeIntervalSince1970 * 1_000_000)
        var round: UInt64 = 0
        while !Task.isCancelled {
            round += 1
            let number = base + round
            for (pair, objectKey) in cluster.startProbeRound(number: number, now: .now) {
                guard let (host, port) = pair.udpHostAndPort, let address = SocketAddress.validated(host: host, port: port) else { continue }
                let event = ObjectEvent(sceneKey: Self.probeScenePrefix + pair.id, objectKey: objectKey, sequence: number)
                var payload = EventCodec.encode(event, as: .binary, allocator: sender.allocator)
                if let session = sessions.sender(for: pair.id) { payload = session.seal(payload, allocator: sender.allocator) }
                sender.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: payload), promise: nil)
            }
            try? await Task.sleep(for: cluster.settings.probeInterval)
        }
    }

    /// GETs `/health` of both halves of each pair; a half that fails or takes longer than the interval is a miss.
    private func checkHTTP() async {
        let interval = cluster.settings.httpCheckInterval
        while !Task.isCancelled {
            await withTaskGroup(of: Void.self) { group in
                for status in cluster.snapshot {
                    let pair = status.announcement
                    group.addTask {
                        var healthy = true
                        for url in Set([pair.clymanHTTP, pair.crazyIvanHTTP]) {
                            let response = try? await clusterCall(.GET, url + "/health", timeout: TimeAmount(interval))
                            if response?.status != .ok { healthy = false }
                        }
                        cluster.httpChecked(pairID: pair.id, healthy: healthy)
                    }
                }
            }
            try? await Task.sleep(for: interval)
        }
    }
}

/// Probes coming back out of the pairs' CrazyIvans.
final class ProbeAnswerHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    let cluster: ClusterManager
    let sessions: ProbeSessions

    init(cluster: ClusterManager, sessions: ProbeSessions) {
        self.cluster = cluster
        self.sessions = sessions
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        var datagram = envelope.data
        if let header = SealedDatagram.header(of: datagram) {
            guard let session = sessions.receiver(keyID: header.keyID), case .opened(let plaintext) = session.open(datagram, allocator: context.channel.allocator) else { return }
            datagram = plaintext
        }
        guard let event = try? EventCodec.decode(datagram), event.sceneKey.hasPrefix(HealthProber.probeScenePrefix) else { return }
        cluster.probeAnswered(pairID: String(event.sceneKey.dropFirst(HealthProber.probeScenePrefix.count)), number: event.sequence, now: .now)
    }
}

/// The probe devices' sessions with each pair that seals events, from their latest registrations there:
/// the sender's by pair, the receiver's by key id (what a returning probe names).
final class ProbeSessions: Sendable {
    struct State {
        var senders: [String: DeviceSession] = [:]
        var receivers: [String: DeviceSession] = [:]
        var receiversByKeyID: [UInt64: DeviceSession] = [:]
    }

    private let state = Mutex(State())

    func set(receiver: DeviceSession?, sender: DeviceSession?, for pairID: String) {
        state.withLock { state in
            if let previous = state.receivers.removeValue(forKey: pairID) { state.receiversByKeyID[previous.keyID] = nil }
            state.senders[pairID] = sender
            if let receiver {
                state.receivers[pairID] = receiver
                state.receiversByKeyID[receiver.keyID] = receiver
            }
        }
    }

    func sender(for pairID: String) -> DeviceSession? { state.withLock { $0.senders[pairID] } }
    func receiver(keyID: UInt64) -> DeviceSession? { state.withLock { $0.receiversByKeyID[keyID] } }
}

extension TimeAmount {
    init(_ duration: Duration) {
        self = .nanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}
