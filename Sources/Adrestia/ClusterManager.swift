import Metrics
import AeselModel
import AeselStore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import HTTPTypes
import NIOFoundationCompat
import NIOConcurrencyHelpers

/// Adrestia's settings for health checks and failover.
public struct ClusterSettings: Sendable {
    /// Time between probe rounds; a probe not answered by the next round is a miss.
    public var probeInterval: Duration
    /// Consecutive misses (probes or HTTP checks) after which a pair is down.
    public var missesAllowed: Int
    /// Time between HTTP health checks of both halves.
    public var httpCheckInterval: Duration
    /// Whether a scene may move to a pair of another region when its own region has none healthy.
    public var crossRegionFailover: Bool
    /// The region of scenes that name none.
    public var defaultRegion: String
    /// With several instances on etcd: how long the leader's key may stay unchanged before a follower
    /// takes the lead. The leader renews it five times as often and stops acting at 4/5 of it.
    public var leaderTimeout: Duration

    public init(
        probeInterval: Duration = .milliseconds(50),
        missesAllowed: Int = 3,
        httpCheckInterval: Duration = .milliseconds(250),
        crossRegionFailover: Bool = false,
        defaultRegion: String = "default",
        leaderTimeout: Duration = .milliseconds(500)
    ) {
        self.probeInterval = probeInterval
        self.missesAllowed = missesAllowed
        self.httpCheckInterval = httpCheckInterval
        self.crossRegionFailover = crossRegionFailover
        self.defaultRegion = defaultRegion
        self.leaderTimeout = leaderTimeout
    }
}

/// Adrestia's cluster state (DESIGN.md section 5): the pairs discovery reports, their health, and the
/// scene-to-pair mapping, which lives in the store so that a restart loses none of it.
///
/// Pair state is a small table under a lock, read by the routes and written by the discovery, probe and
/// HTTP-check loops. Every instance probes, so a follower's view is warm when it takes the lead; only
/// the leader moves scenes, on one task per down pair. A first assignment is no failover decision:
/// any instance makes it, and the store's compare-and-set keeps one.
final class ClusterManager: Sendable {
    let settings: ClusterSettings
    let store: any AeselStore
    let leadership: Leadership
    private let directory: any PairDirectory
    private let logger: Logger
    private let pairs = NIOLockedValueBox<[String: PairStatus]>([:])
    /// Pairs whose scenes are being moved, so a second detection does not start a second move.
    private let moving = NIOLockedValueBox<Set<String>>([])
    private let started = ContinuousClock.now
    private let scenesMoved = Counter(label: "aesel_scenes_moved_total")
    private let pairsWentDown = Counter(label: "aesel_pair_failures_total")
    private let failedReports = Counter(label: "aesel_failed_reports_total")

    init(settings: ClusterSettings, store: any AeselStore, directory: any PairDirectory, leadership: Leadership, logger: Logger) {
        self.settings = settings
        self.store = store
        self.leadership = leadership
        self.directory = directory
        self.logger = logger
    }

    var snapshot: [PairStatus] {
        pairs.withLockedValue { Array($0.values) }.sorted { $0.announcement.id < $1.announcement.id }
    }

    func status(of pairID: String) -> PairStatus? {
        pairs.withLockedValue { $0[pairID] }
    }

    // MARK: Discovery

    /// Takes in the pairs discovery reports now. A pair that is no longer announced is down and forgotten;
    /// a pair announced with new addresses (a restart) starts over as not yet healthy.
    func refreshFromDiscovery() async {
        guard let announced = try? await directory.pairs() else { return }
        let current = Dictionary(announced.filter { $0.problem == nil }.map { ($0.id, $0) }) { first, _ in first }
        let gone: [String] = pairs.withLockedValue { pairs in
            for (id, announcement) in current where pairs[id]?.announcement != announcement {
                pairs[id] = PairStatus(announcement: announcement)
            }
            let gone = pairs.keys.filter { current[$0] == nil }
            for id in gone { pairs[id] = nil }
            return gone
        }
        for id in gone {
            logger.warning("pair no longer announced", metadata: ["aesel.pair": "\(id)"])
            moveScenes(awayFrom: id)
            await forget(id)
        }
    }

    // MARK: Health

    /// Marks misses for the probes still unanswered and returns the probes to send now, numbered `number`.
    func startProbeRound(number: UInt64, now: ContinuousClock.Instant) -> [(pair: PairAnnouncement, objectKey: String)] {
        leadership.probeRoundStarted()
        var wentDown: [String] = []
        let targets: [(PairAnnouncement, String)] = pairs.withLockedValue { pairs in
            var targets: [(PairAnnouncement, String)] = []
            for (id, var status) in pairs where status.probeRegistered {
                let round = status.startProbeRound(number: number, now: now, missesAllowed: settings.missesAllowed)
                if round.wentDown { wentDown.append(id) }
                if round.send { targets.append((status.announcement, status.probeObjectKey)) }
                pairs[id] = status
            }
            return targets
        }
        for id in wentDown { pairWentDown(id, reason: "\(settings.missesAllowed) probes unanswered") }
        return targets
    }

    /// A probe came back out of the pair's CrazyIvan.
    func probeAnswered(pairID: String, number: UInt64, now: ContinuousClock.Instant) {
        let cameUp: Bool = pairs.withLockedValue { pairs in
            guard var status = pairs[pairID] else { return false }
            let cameUp = status.probeAnswered(number: number, now: now, missesAllowed: settings.missesAllowed)
            pairs[pairID] = status
            return cameUp
        }
        if cameUp { logger.info("pair healthy", metadata: ["aesel.pair": "\(pairID)"]) }
    }

    func probeRegistered(pairID: String, announcement: PairAnnouncement, objectKey: String) {
        pairs.withLockedValue { pairs in
            guard pairs[pairID]?.announcement == announcement else { return }
            pairs[pairID]?.probeRegistered = true
            pairs[pairID]?.probeObjectKey = objectKey
        }
    }

    /// The result of one HTTP health check of both halves.
    func httpChecked(pairID: String, healthy: Bool) {
        let wentDown: Bool = pairs.withLockedValue { pairs in
            guard var status = pairs[pairID] else { return false }
            let wentDown = status.httpChecked(healthy: healthy, missesAllowed: settings.missesAllowed)
            pairs[pairID] = status
            return wentDown
        }
        if wentDown { pairWentDown(pairID, reason: "\(settings.missesAllowed) HTTP health checks failed") }
    }

    /// A device reports that `failed` (its CLyman UDP endpoint) stopped answering. If that pair has also
    /// missed its latest probe, it is taken down now rather than after the remaining misses; a pair that
    /// answers its probes stays up, however many devices report it.
    func reportFailed(endpoint failed: String) {
        failedReports.increment()
        let suspect: String? = pairs.withLockedValue { pairs in
            guard let id = pairs.first(where: { $0.value.announcement.clymanUDP == failed })?.key, var status = pairs[id], status.reportedSilent()
            else { return nil }
            pairs[id] = status
            return id
        }
        if let suspect { pairWentDown(suspect, reason: "a device reported it silent and it missed a probe") }
    }

    private func pairWentDown(_ pairID: String, reason: String) {
        pairsWentDown.increment()
        logger.warning("pair down", metadata: ["aesel.pair": "\(pairID)", "aesel.reason": "\(reason)"])
        moveScenes(awayFrom: pairID)
    }

    // MARK: Scene-to-pair mapping

    /// The healthy pair a scene is on, assigning or moving it first when needed.
    func pair(forScene sceneKey: String, region hint: String?) async throws -> PairAnnouncement {
        let current = try await store.pairOfScene(sceneKey)
        if let current, let healthy = await verdict(on: current) { return healthy }
        if current != nil, !leadership.isLeading { return try await leadersPair(forScene: sceneKey) }
        let region = try await region(ofScene: sceneKey, hint: hint, formerPair: current)
        return try await move(sceneKey, from: current, region: region)
    }

    /// The pair if it is healthy. A pair not judged yet (Adrestia just started, or the pair just
    /// announced itself) gets up to a second: a restart must not move scenes off pairs that are fine.
    private func verdict(on pairID: String) async -> PairAnnouncement? {
        let deadline = ContinuousClock.now + .seconds(1)
        while true {
            let status = status(of: pairID)
            if let status, status.healthy { return status.announcement }
            let undecided = status.map { !$0.down } ?? (ContinuousClock.now - started < .seconds(3))
            guard undecided, ContinuousClock.now < deadline else { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Moves every scene of a pair that went down, one task per pair; stops if the pair comes back first.
    private func moveScenes(awayFrom pairID: String) {
        guard leadership.isLeading, moving.withLockedValue({ $0.insert(pairID).inserted }) else { return }
        Task {
            defer { _ = moving.withLockedValue { $0.remove(pairID) } }
            guard let scenes = try? await store.scenes(onPair: pairID) else { return }
            var stranded = 0
            for sceneKey in scenes {
                if status(of: pairID)?.healthy == true || !leadership.isLeading { return }
                do {
                    let region = try await region(ofScene: sceneKey, hint: nil, formerPair: pairID)
                    _ = try await move(sceneKey, from: pairID, region: region)
                } catch {
                    stranded += 1
                }
            }
            if stranded > 0 {
                logger.warning("scenes left on a down pair: no healthy pair can take them", metadata: ["aesel.pair": "\(pairID)", "aesel.scenes": "\(stranded)"])
            }
        }
    }

    /// Moves the scenes of pairs that are down or gone and still hold scenes: those no pair could take
    /// before, those assigned while a move was running, and, when this instance takes the lead, those
    /// of pairs that went down while it followed. A pair this instance saw go down counts at once; one
    /// it does not know counts as gone only once discovery has had time to list it after a start.
    func sweepStrandedScenes() async {
        guard leadership.isLeading, let counts = try? await store.sceneCountsByPair() else { return }
        let discoveryRead = ContinuousClock.now - started > AnnouncementTiming.timeToLive + .seconds(1)
        for pairID in counts.keys {
            let status = status(of: pairID)
            if status?.down == true || (status == nil && discoveryRead) { moveScenes(awayFrom: pairID) }
        }
    }

    /// Forgets a pair that left discovery: its probe scene goes too.
    private func forget(_ pairID: String) async {
        guard leadership.isLeading else { return }
        _ = try? await store.deleteScene(key: HealthProber.probeScenePrefix + pairID)
    }

    /// Assigns `sceneKey`, now on `former` (or nowhere), to the least loaded healthy pair of `region`, then
    /// asks that pair's CrazyIvan to load the scene's registrations. If another decision got there
    /// first, that one stands.
    private func move(_ sceneKey: String, from former: String?, region: String?) async throws -> PairAnnouncement {
        var former = former
        for _ in 0..<3 {
            // Checked again right before the compare-and-set: a lapsed leader must not move a scene.
            if former != nil, !leadership.isLeading { throw ClusterError(.notLeader, "only the leader moves scenes") }
            let target = try await choosePair(region: region, excluding: former)
            if try await store.assignScene(sceneKey, toPair: target.id, ifCurrently: former) {
                if let former {
                    scenesMoved.increment()
                    logger.info("scene moved", metadata: ["aesel.scene": "\(sceneKey)", "aesel.from": "\(former)", "aesel.to": "\(target.id)"])
                }
                await preload(sceneKey, on: target, moved: former != nil)
                return target
            }
            // Someone else moved it: use theirs if healthy, else move it from there.
            former = try await store.pairOfScene(sceneKey)
            if let former, let status = status(of: former), status.healthy { return status.announcement }
        }
        throw ClusterError(.noHealthyPair, "no healthy pair in region \(region ?? "any")")
    }

    /// A follower's answer for a scene whose pair it sees down: the leader's, which moves the scene if
    /// it agrees. With no leader reachable the scene stays put, and the caller answers 503.
    private func leadersPair(forScene sceneKey: String) async throws -> PairAnnouncement {
        if let answer = await askLeader("/v1/scene/\(pathSegment(sceneKey))/endpoint"), answer.status == .ok,
            let pairID = (try? JSONSerialization.jsonObject(with: Data(buffer: answer.body)) as? [String: Any])?["pair"] as? String,
            let status = status(of: pairID)
        {
            return status.announcement
        }
        throw ClusterError(.noHealthyPair, "the scene's pair is down and no leader answers to move it")
    }

    /// Sends `pathAndQuery` (a GET) to the leader, marked as forwarded so that it answers it itself.
    /// Nil when no other instance leads or it does not answer.
    func askLeader(_ pathAndQuery: String) async -> (status: HTTPResponseStatus, body: ByteBuffer)? {
        guard let leader = leadership.leader, leader.instance != leadership.me?.instance else { return nil }
        return try? await clusterCall(.GET, leader.url + pathAndQuery, headers: [HTTPField.Name.aeselForwardedBy.rawName: leadership.me?.instance ?? "?"], timeout: .seconds(2))
    }

    /// `region` nil: a scene that names none may go anywhere.
    private func choosePair(region: String?, excluding former: String?) async throws -> PairAnnouncement {
        let healthy = snapshot.filter { $0.healthy && $0.announcement.id != former }.map(\.announcement)
        var candidates = healthy.filter { $0.region == region ?? settings.defaultRegion }
        if candidates.isEmpty, region == nil || settings.crossRegionFailover { candidates = healthy }
        guard !candidates.isEmpty else { throw ClusterError(.noHealthyPair, "no healthy pair in region \(region ?? "any")") }
        let load = try await store.sceneCountsByPair()
        return candidates.min { (load[$0.id] ?? 0, $0.id) < (load[$1.id] ?? 0, $1.id) }!
    }

    /// The scene's region, else the one its registration names, else its former pair's; nil if none.
    private func region(ofScene sceneKey: String, hint: String?, formerPair: String?) async throws -> String? {
        if let region = try await store.scene(key: sceneKey)?.region, !region.isEmpty { return region }
        if let hint, !hint.isEmpty { return hint }
        if let formerPair, let region = status(of: formerPair)?.announcement.region { return region }
        return nil
    }

    /// The original's Cache API on the pair's CrazyIvan; a failure only delays the load to the first event.
    /// After a move, the pair also tells the scene's devices to ask for their new endpoint.
    private func preload(_ sceneKey: String, on pair: PairAnnouncement, moved: Bool) async {
        _ = try? await clusterCall(.PUT, "\(pair.crazyIvanHTTP)/v1/scene/cache/\(pathSegment(sceneKey))" + (moved ? "?moved=true" : ""), timeout: .seconds(1))
    }
}
