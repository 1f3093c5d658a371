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
/// too. Discovery is read every 200 ms. A pair with sealed events gives the probe device a session at
/// registration: probes go out sealed with it, and come back sealed for it.
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
        let receiverPort = receiver.localAddress?.port ?? 0
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await discover(receiverPort: receiverPort) }
                group.addTask { await probe(from: sender) }
                group.addTask { await checkHTTP() }
            }
        }
    }

    /// Reads discovery, registers the probe receiver with each pair not probed yet (all at once, so a
    /// dead pair does not hold up the others), and every 2 s moves scenes stranded on down pairs.
    private func discover(receiverPort: Int) async {
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
                        if let objectKey = await registerProbe(with: status.announcement, device: "\(Self.probeName)@\(instance)", port: receiverPort) {
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

    /// Registers the receive socket as the one device of the pair's probe scene, in the pair's region,
    /// and returns the key of the scene's probe object, which it creates if there is none.
    private func registerProbe(with pair: PairAnnouncement, device: String, port: Int) async -> String? {
        let scene = Self.probeScenePrefix + pair.id
        let registration: [String: Any] = [
            "scenes": [["key": scene, "region": pair.region, "devices": [["key": device, "hostname": advertisedHost, "port": port, "format": "binary"]]]]
        ]
        guard let answer = await probeCall(pair, "\(pair.crazyIvanHTTP)/v1/scene/\(pathSegment(scene))/register", registration) else { return nil }
        let keyID = (answer["session_key_id"] as? NSNumber)?.uint64Value
        sessions.set(DeviceSession(keyID: keyID, secret: answer["session_key"] as? String, sceneKey: scene, deviceKey: device), for: pair.id)
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
                if let session = sessions.session(for: pair.id) { payload = session.seal(payload, allocator: sender.allocator) }
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
            guard let session = sessions.session(keyID: header.keyID), case .opened(let plaintext) = session.open(datagram, allocator: context.channel.allocator) else { return }
            datagram = plaintext
        }
        guard let event = try? EventCodec.decode(datagram), event.sceneKey.hasPrefix(HealthProber.probeScenePrefix) else { return }
        cluster.probeAnswered(pairID: String(event.sceneKey.dropFirst(HealthProber.probeScenePrefix.count)), number: event.sequence, now: .now)
    }
}

/// The probe device's session with each pair that seals events, from its latest registration there.
final class ProbeSessions: Sendable {
    private let state = Mutex<(byPair: [String: DeviceSession], byKeyID: [UInt64: DeviceSession])>(([:], [:]))

    func set(_ session: DeviceSession?, for pairID: String) {
        state.withLock { state in
            if let previous = state.byPair.removeValue(forKey: pairID) { state.byKeyID[previous.keyID] = nil }
            if let session {
                state.byPair[pairID] = session
                state.byKeyID[session.keyID] = session
            }
        }
    }

    func session(for pairID: String) -> DeviceSession? { state.withLock { $0.byPair[pairID] } }
    func session(keyID: UInt64) -> DeviceSession? { state.withLock { $0.byKeyID[keyID] } }
}

extension TimeAmount {
    init(_ duration: Duration) {
        self = .nanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}
