import Foundation
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// The Adrestia instance that leads, as written under `/CLUSTER/leader` in etcd.
package struct LeaderRecord: Codable, Sendable, Hashable {
    /// The instance's id (`--instance-id`, by default its advertised `host:port`).
    package var instance: String
    /// Its HTTP base URL: followers send it the devices' `?failed=` reports and the moves they need.
    package var url: String
    /// When it took the lead, Unix milliseconds: together with `instance`, one term.
    package var since: Int64 = 0

    package init(instance: String, url: String, since: Int64 = 0) {
        (self.instance, self.url, self.since) = (instance, url, since)
    }
}

/// Which instance probes and moves scenes (DESIGN.md section 5). With etcd discovery every instance
/// competes for one key; with embedded discovery the one instance always leads.
///
/// The lease is the leader's own, kept by compare-and-set on the key's mod revision:
/// - the leader rewrites the key every `leaderTimeout / 5`, each time only if it still holds the
///   revision its own last write made, and leads until `4/5 leaderTimeout` after it *sent* the last
///   write that succeeded: it stops at once, even while a call to etcd hangs or the process was stopped;
/// - a follower reads the key every `leaderTimeout / 10` and takes it, again by compare-and-set on the
///   revision it saw, when that revision has not changed for `leaderTimeout` since it first saw it.
///
/// A follower sees a revision only after the leader sent it, so the old leader has stopped
/// `leaderTimeout / 5` before anyone else can lead. The store's scene-to-pair compare-and-set stays the
/// last guard against a move started just before a stop.
package final class Leadership: Service, Sendable {
    package enum Mode: Sendable {
        case sole
        case elected(EtcdClient, key: String)
    }

    private struct State {
        /// This instance, once its HTTP listener is bound.
        var me: LeaderRecord?
        /// Leading while the clock is before this.
        var leadingUntil: ContinuousClock.Instant?
        var term: LeaderRecord?
        /// The latest term known here, this instance's or another's.
        var lastTerm: LeaderRecord?
        /// The leader as last seen in etcd, and when its key last changed as seen from here.
        var leader: LeaderRecord?
        var leaderSeenAt: ContinuousClock.Instant?
        /// When this instance's first probe round as leader of the current term began, Unix milliseconds.
        var firstProbeRound: Int64?
    }

    let mode: Mode
    let timeout: Duration
    private let logger: Logger
    private let state = NIOLockedValueBox(State())
    private let changes = Counter(label: "aesel_leader_changes_total")
    /// Called when this instance takes the lead.
    private let onLead = NIOLockedValueBox<(@Sendable () -> Void)?>(nil)

    package init(mode: Mode, timeout: Duration, logger: Logger) {
        self.mode = mode
        self.timeout = timeout
        self.logger = logger
    }

    /// Gives the election this instance's id and URL; it competes only once it has them.
    package func start(as me: LeaderRecord) {
        state.withLockedValue { $0.me = me }
    }

    func whenLeading(_ action: @escaping @Sendable () -> Void) {
        onLead.withLockedValue { $0 = action }
    }

    package var isLeading: Bool {
        if case .sole = mode { return true }
        return state.withLockedValue { ($0.leadingUntil ?? .now) > .now }
    }

    var me: LeaderRecord? { state.withLockedValue { $0.me } }

    /// The leader now: this instance while it leads, else the last one seen whose key changed within the
    /// timeout; nil between leaders.
    package var leader: LeaderRecord? {
        if case .sole = mode { return me }
        let now = ContinuousClock.now
        return state.withLockedValue { state in
            if let until = state.leadingUntil, until > now { return state.term }
            guard let seen = state.leaderSeenAt, now - seen < timeout, state.leader?.instance != state.me?.instance else { return nil }
            return state.leader
        }
    }

    /// When this instance's first probe round as the current leader began (Unix ms), if it leads.
    var firstProbeRound: Int64? {
        isLeading ? state.withLockedValue { $0.firstProbeRound } : nil
    }

    /// A probe round begins: the first one of a term is noted, for `aesel bench --leader-loss`.
    func probeRoundStarted() {
        guard isLeading else { return }
        state.withLockedValue { state in
            if state.firstProbeRound == nil { state.firstProbeRound = Self.unixMilliseconds() }
        }
    }

    package func run() async throws {
        guard case .elected(let etcd, let key) = mode else {
            try? await gracefulShutdown()
            return
        }
        var known = self.me
        while known == nil {
            try? await Task.sleep(for: .milliseconds(10))
            if Task.isCancelled || Task.isShuttingDownGracefully { return }
            known = self.me
        }
        let me = known!
        let held = await cancelWhenGracefulShutdown { await self.compete(etcd: etcd, key: key, as: me) }
        // Resign, so that a follower leads at once rather than after the timeout.
        if let held = held ?? nil {
            state.withLockedValue { $0.leadingUntil = nil }
            _ = try? await etcd.delete(key: key, ifModRevision: held)
        }
    }

    /// The election loop; returns the revision of the key this instance last wrote, if it still leads.
    private func compete(etcd: EtcdClient, key: String, as me: LeaderRecord) async -> Int64? {
        let lease = timeout * 4 / 5
        // A renewal may take as long as the lease it extends: on a loaded machine etcd's answer can take
        // far longer than the renewal period, and a late success still counts from when it was sent.
        let callTimeout = TimeAmount(lease)
        var held: Int64?
        var seen: (revision: Int64, at: ContinuousClock.Instant)?
        var failing = false
        while !Task.isCancelled {
            let sent = ContinuousClock.now
            do {
                if let revision = held, let term = state.withLockedValue({ $0.term }) {
                    let swap = try await etcd.put(key: key, value: try JSONEncoder().encode(term), ifModRevision: revision, timeout: callTimeout)
                    if swap.succeeded {
                        held = swap.revision
                        lead(until: sent + lease)
                    } else if let current = swap.current, Self.record(current) == term {
                        // Our last write landed though its answer did not: the key is still ours. The
                        // lease is not extended, since nothing was written now that a follower could see;
                        // the next write, on the revision etcd has, extends it.
                        held = current.modRevision
                    } else {
                        held = nil
                        seen = swap.current.map { ($0.modRevision, ContinuousClock.now) }
                        follow(swap.current.flatMap(Self.record), seenAt: .now)
                    }
                } else {
                    let current = try await etcd.get(key: key, timeout: callTimeout)
                    let now = ContinuousClock.now
                    if let current, current.modRevision != seen?.revision {
                        seen = (current.modRevision, now)
                        follow(Self.record(current), seenAt: now)
                    }
                    if current == nil || now - seen!.at >= timeout {
                        var term = me
                        term.since = Self.unixMilliseconds()
                        let attempt = ContinuousClock.now
                        let swap = try await etcd.put(key: key, value: try JSONEncoder().encode(term), ifModRevision: current?.modRevision ?? 0, timeout: callTimeout)
                        if swap.succeeded {
                            held = swap.revision
                            // Seen again from scratch if this term lapses.
                            seen = nil
                            state.withLockedValue {
                                $0.term = term
                                $0.lastTerm = term
                                $0.firstProbeRound = nil
                            }
                            lead(until: attempt + lease)
                            logger.info("leading the cluster", metadata: ["aesel.instance": "\(me.instance)"])
                            changes.increment()
                            if let action = onLead.withLockedValue({ $0 }) { action() }
                        } else if let current = swap.current {
                            seen = (current.modRevision, .now)
                            follow(Self.record(current), seenAt: .now)
                        }
                    }
                }
                failing = false
            } catch {
                if !failing { logger.warning("cannot reach etcd for the leader election", metadata: ["error": "\(error)"]) }
                failing = true
            }
            if held != nil, !isLeading {
                // The lease ran out before a renewal got through: a follower may lead by now.
                held = nil
                logger.warning("leadership lapsed: etcd did not confirm it in time", metadata: ["aesel.instance": "\(me.instance)"])
            }
            try? await Task.sleep(until: sent + (held != nil ? timeout / 5 : timeout / 10))
        }
        return held
    }

    private func lead(until: ContinuousClock.Instant) {
        state.withLockedValue { $0.leadingUntil = until }
    }

    /// Another instance leads (or none seen): note it; a new term after a known one is a change.
    private func follow(_ leader: LeaderRecord?, seenAt: ContinuousClock.Instant) {
        let (changed, wasLeading): (Bool, Bool) = state.withLockedValue { state in
            let wasLeading = state.leadingUntil != nil
            state.leadingUntil = nil
            let changed = leader != nil && state.lastTerm != nil && leader != state.lastTerm
            if let leader { state.lastTerm = leader }
            state.leader = leader
            state.leaderSeenAt = seenAt
            return (changed, wasLeading)
        }
        if wasLeading { logger.warning("another instance leads now: following", metadata: ["aesel.leader": "\(leader?.instance ?? "none")"]) }
        if changed { changes.increment() }
    }

    private static func record(_ entry: EtcdClient.Entry) -> LeaderRecord? {
        try? JSONDecoder().decode(LeaderRecord.self, from: entry.value)
    }

    static func unixMilliseconds() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000)
    }
}
