import AeselModel
import NIOFoundationCompat
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import NIOConcurrencyHelpers

/// Where pairs announce themselves: `--discovery embedded` (Adrestia's own registry; a pair gives
/// Adrestia's base URL) or `--discovery etcd://HOST:PORT[/CLUSTER]` (`etcds://` for etcd over TLS).
public enum DiscoverySetting: Sendable, Hashable, CustomStringConvertible {
    /// Adrestia's own registry. For a pair, Adrestia's base URL; for Adrestia itself, nil.
    case embedded(adrestia: String?)
    /// etcd's client URL (`http://` or, from `etcds://`, `https://`), and the cluster whose pairs live
    /// under `/CLUSTER/pairs/` (default `aesel`), so that several clusters can share one etcd.
    case etcd(endpoint: String, cluster: String)

    /// Discovery URL schemes and the etcd client URL schemes they stand for.
    private static let etcdSchemes: [(discovery: String, client: String)] = [("etcd://", "http://"), ("etcds://", "https://")]

    public init?(_ text: String) {
        if text == "embedded" {
            self = .embedded(adrestia: nil)
        } else if let schemes = Self.etcdSchemes.first(where: { text.hasPrefix($0.discovery) }), text.count > schemes.discovery.count {
            let rest = text.dropFirst(schemes.discovery.count)
            let hostPort = rest.prefix { $0 != "/" }
            let cluster = rest.dropFirst(hostPort.count + 1)
            guard !hostPort.isEmpty, !cluster.contains("/") else { return nil }
            self = .etcd(endpoint: schemes.client + hostPort, cluster: cluster.isEmpty ? "aesel" : String(cluster))
        } else if text.hasPrefix("http://") || text.hasPrefix("https://") {
            self = .embedded(adrestia: text.hasSuffix("/") ? String(text.dropLast()) : text)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .embedded(let adrestia): return adrestia ?? "embedded"
        case .etcd(let endpoint, let cluster):
            let schemes = Self.etcdSchemes.first { endpoint.hasPrefix($0.client) } ?? Self.etcdSchemes[0]
            return schemes.discovery + endpoint.dropFirst(schemes.client.count) + "/" + cluster
        }
    }
}

/// How long an announcement lives without being renewed, and how often pairs renew it.
enum AnnouncementTiming {
    static let timeToLive: Duration = .seconds(2)
    static let renewEvery: Duration = .milliseconds(250)
}

/// Adrestia's view of discovery: the pairs announced right now.
protocol PairDirectory: Sendable {
    func pairs() async throws -> [PairAnnouncement]
}

/// The embedded registry: announcements held in memory, each forgotten `timeToLive` after its last renewal.
final class EmbeddedRegistry: PairDirectory {
    private let entries = NIOLockedValueBox<[String: (announcement: PairAnnouncement, expires: ContinuousClock.Instant)]>([:])

    func announce(_ announcement: PairAnnouncement) {
        let expires = ContinuousClock.now + AnnouncementTiming.timeToLive
        entries.withLockedValue { $0[announcement.id] = (announcement, expires) }
    }

    func withdraw(pairID: String) {
        _ = entries.withLockedValue { $0.removeValue(forKey: pairID) }
    }

    func pairs() async throws -> [PairAnnouncement] {
        let now = ContinuousClock.now
        return entries.withLockedValue { entries in
            entries = entries.filter { $0.value.expires > now }
            return entries.values.map(\.announcement).sorted { $0.id < $1.id }
        }
    }
}

/// Pairs announced in etcd under `/CLUSTER/pairs/`, read with one range request.
struct EtcdDirectory: PairDirectory {
    let etcd: EtcdClient
    let cluster: String

    func pairs() async throws -> [PairAnnouncement] {
        try await etcd.range(prefix: EtcdClient.pairPrefix(cluster: cluster)).compactMap { try? JSONDecoder().decode(PairAnnouncement.self, from: $0.value) }
    }
}

/// A pair's side: keeps its announcement alive until shutdown, then withdraws it. It starts announcing
/// once `start` gives it the addresses, known when the servers are bound.
package final class PairAnnouncer: Service, Sendable {
    let discovery: DiscoverySetting
    let logger: Logger
    private let pending = NIOLockedValueBox<PairAnnouncement?>(nil)

    package init(discovery: DiscoverySetting, logger: Logger) {
        self.discovery = discovery
        self.logger = logger
    }

    package func start(_ announcement: PairAnnouncement) {
        pending.withLockedValue { $0 = announcement }
    }

    package func run() async throws {
        var ready: PairAnnouncement?
        while ready == nil {
            ready = pending.withLockedValue { $0 }
            if ready == nil {
                try? await Task.sleep(for: .milliseconds(10))
                if Task.isCancelled || Task.isShuttingDownGracefully { return }
            }
        }
        let announcement = ready!
        switch discovery {
        case .embedded(let adrestia):
            guard let adrestia else { return }
            try await announceToAdrestia(adrestia, announcement)
        case .etcd(let endpoint, let cluster):
            try await announceToEtcd(EtcdClient(endpoint: endpoint), key: EtcdClient.pairPrefix(cluster: cluster) + announcement.id, announcement)
        }
    }

    /// PUT /v1/pairs/{id} every `renewEvery`; failures are logged and retried (Adrestia may restart).
    private func announceToAdrestia(_ adrestia: String, _ announcement: PairAnnouncement) async throws {
        let body = try JSONEncoder().encode(announcement)
        let url = "\(adrestia)/v1/pairs/\(pathSegment(announcement.id))"
        let logger = self.logger
        await cancelWhenGracefulShutdown {
            var failing = false
            while !Task.isCancelled {
                do {
                    let response = try await clusterCall(.PUT, url, json: body, timeout: .seconds(1))
                    if response.status == .ok, failing { logger.info("announcing to Adrestia again", metadata: ["aesel.adrestia": "\(adrestia)"]) }
                    if response.status != .ok, !failing {
                        // 401 or 403: the cluster secrets differ.
                        logger.warning("Adrestia refused the announcement", metadata: ["aesel.adrestia": "\(adrestia)", "aesel.status": "\(response.status.code)"])
                    }
                    failing = response.status != .ok
                } catch {
                    if !failing { logger.warning("cannot announce to Adrestia", metadata: ["aesel.adrestia": "\(adrestia)", "error": "\(error)"]) }
                    failing = true
                }
                try? await Task.sleep(for: AnnouncementTiming.renewEvery)
            }
        }
        _ = try? await clusterCall(.DELETE, url, timeout: .seconds(1))
    }

    /// A lease with a TTL, the announcement put under it, and keep-alives; a lost lease is granted anew.
    private func announceToEtcd(_ etcd: EtcdClient, key: String, _ announcement: PairAnnouncement) async throws {
        let value = try JSONEncoder().encode(announcement)
        let ttl = Int(AnnouncementTiming.timeToLive.components.seconds)
        let logger = self.logger
        let lease = await cancelWhenGracefulShutdown { () async -> String? in
            // Kept through errors: a slow or failed call does not lose it; only etcd saying it is gone does.
            var lease: String?
            var failing = false
            while !Task.isCancelled {
                do {
                    if let current = lease, try await etcd.keepAlive(lease: current) {
                        // Renewed.
                    } else {
                        let granted = try await etcd.grantLease(ttl: ttl)
                        try await etcd.put(key: key, value: value, lease: granted)
                        if lease != nil { logger.info("etcd lease lost; announced again", metadata: ["aesel.pair": "\(announcement.id)"]) }
                        lease = granted
                    }
                    failing = false
                } catch {
                    if !failing { logger.warning("cannot announce to etcd", metadata: ["error": "\(error)"]) }
                    failing = true
                }
                try? await Task.sleep(for: AnnouncementTiming.renewEvery)
            }
            return lease
        }
        if let lease = lease ?? nil { try? await etcd.revoke(lease: lease) }
    }
}
