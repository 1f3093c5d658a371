import Foundation

/// One pair as Adrestia sees it.
package struct PairStatus: Sendable {
    package var announcement: PairAnnouncement
    /// Up after `missesAllowed` answered probes in a row with passing HTTP checks; down after
    /// `missesAllowed` misses in a row. The two thresholds keep a lossy pair from flapping.
    package var healthy = false
    /// Set when it goes down (or never came up), so that it counts as judged.
    package var down = false
    package var probeMisses = 0
    package var probeAnswers = 0
    package var httpMisses = 0
    package var lastRoundTrip: Duration?
    /// The probe in flight: its number, and when it left.
    package var outstanding: (number: UInt64, sentAt: ContinuousClock.Instant)?
    /// Whether Adrestia's probe receiver is registered in the pair's probe scene.
    package var probeRegistered = false
    /// The object of the probe scene that probes move (events act only on objects of their scene).
    package var probeObjectKey = ""

    package init(announcement: PairAnnouncement) {
        self.announcement = announcement
    }
}

/// The health state machine, pure: the cluster manager runs it under its lock and acts on what it returns.
extension PairStatus {
    /// A new probe round: a probe still unanswered is a miss. Returns whether the pair just went down
    /// and whether to send it the round's probe.
    package mutating func startProbeRound(number: UInt64, now: ContinuousClock.Instant, missesAllowed: Int) -> (wentDown: Bool, send: Bool) {
        var wentDown = false
        if outstanding != nil {
            probeMisses += 1
            probeAnswers = 0
            if probeMisses >= missesAllowed { wentDown = takeDown() }
        }
        guard probeRegistered else { return (wentDown, false) }
        outstanding = (number, now)
        return (wentDown, true)
    }

    /// A probe came back; only the round's own counts. Returns whether the pair just came up.
    package mutating func probeAnswered(number: UInt64, now: ContinuousClock.Instant, missesAllowed: Int) -> Bool {
        guard let sent = outstanding, sent.number == number else { return false }
        outstanding = nil
        probeMisses = 0
        probeAnswers += 1
        lastRoundTrip = now - sent.sentAt
        guard !healthy, probeAnswers >= missesAllowed, httpMisses == 0 else { return false }
        healthy = true
        down = false
        return true
    }

    /// One HTTP health check of both halves. Returns whether the pair just went down.
    package mutating func httpChecked(healthy passed: Bool, missesAllowed: Int) -> Bool {
        httpMisses = passed ? 0 : httpMisses + 1
        return httpMisses >= missesAllowed && takeDown()
    }

    /// A device reported the pair silent: down now if it also missed a probe. Returns whether it went down.
    package mutating func reportedSilent() -> Bool {
        guard healthy, probeMisses >= 1 else { return false }
        return takeDown()
    }

    /// Marks the pair down; returns whether it was healthy (its scenes must move). Its probe registration
    /// is made again, in case that is what was lost.
    private mutating func takeDown() -> Bool {
        let wasHealthy = healthy
        healthy = false
        down = true
        probeAnswers = 0
        probeRegistered = false
        outstanding = nil
        return wasHealthy
    }
}
