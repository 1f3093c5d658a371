import Adrestia
import Testing

/// The pair health state machine without I/O: probes and HTTP checks in, up and down out.
@Suite("Pair health")
struct PairHealthTests {
    static let start = ContinuousClock.now

    /// A pair whose probe receiver is registered, driven round by round with three misses allowed.
    struct Pair {
        var status: PairStatus

        init() {
            let announcement = PairAnnouncement(
                id: "east-1", region: "east", clymanUDP: "127.0.0.1:8201", clymanHTTP: "http://127.0.0.1:8101", crazyIvanHTTP: "http://127.0.0.1:8101")
            status = PairStatus(announcement: announcement)
            status.probeRegistered = true
        }

        static func time(_ round: UInt64) -> ContinuousClock.Instant { start + .milliseconds(Int(round) * 50) }

        /// Starts round `round`; whether the pair went down, and whether its probe is sent.
        mutating func startRound(_ round: UInt64) -> (wentDown: Bool, send: Bool) {
            status.startProbeRound(number: round, now: Self.time(round), missesAllowed: 3)
        }

        /// Answers round `round`; whether the pair came up.
        mutating func answer(_ round: UInt64, after delay: Duration = .milliseconds(2)) -> Bool {
            status.probeAnswered(number: round, now: Self.time(round) + delay, missesAllowed: 3)
        }

        /// Starts round `round` and answers it; whether the pair came up.
        mutating func answeredRound(_ round: UInt64, after delay: Duration = .milliseconds(2)) -> Bool {
            _ = startRound(round)
            return answer(round, after: delay)
        }

        mutating func httpCheck(_ passed: Bool) -> Bool {
            status.httpChecked(healthy: passed, missesAllowed: 3)
        }

        mutating func bringUp() {
            for round in 1...3 { _ = answeredRound(UInt64(round)) }
        }
    }

    @Test("A new pair comes up after three answered probes in a row, with its round trip")
    func comesUp() {
        var pair = Pair()
        let transitions = [pair.answeredRound(1), pair.answeredRound(2), pair.answeredRound(3, after: .milliseconds(4)), pair.answeredRound(4)]
        #expect(transitions == [false, false, true, false])
        #expect(pair.status.healthy && !pair.status.down)
        #expect(pair.status.lastRoundTrip == .milliseconds(2))
    }

    @Test("Three unanswered rounds take a healthy pair down once; its probe is registered again")
    func goesDown() {
        var pair = Pair()
        pair.bringUp()
        let rounds = (4...7).map { pair.startRound(UInt64($0)) }
        #expect(rounds.map(\.wentDown) == [false, false, false, true], "down at the third miss")
        #expect(rounds.last?.send == false, "no probe until the registration is made again")
        #expect(!pair.status.healthy && pair.status.down && !pair.status.probeRegistered)
    }

    @Test("A lossy pair does not flap, and a pair that went down needs three answers in a row again")
    func hysteresis() {
        var pair = Pair()
        pair.bringUp()
        // Miss, answer, miss, answer...: never three misses in a row, so it stays up.
        for round in stride(from: UInt64(4), to: 20, by: 2) {
            _ = pair.startRound(round)
            let cameUp = pair.answeredRound(round + 1)
            #expect(!cameUp && pair.status.healthy)
        }
        for round in UInt64(30)...33 { _ = pair.startRound(round) }
        #expect(pair.status.down)
        pair.status.probeRegistered = true
        let transitions = [pair.answeredRound(40), pair.answeredRound(41), pair.answeredRound(42)]
        #expect(transitions == [false, false, true])
    }

    @Test("A late answer to an earlier round does not count")
    func lateAnswer() {
        var pair = Pair()
        _ = pair.startRound(1)
        _ = pair.startRound(2)
        let counted = pair.answer(1, after: .milliseconds(60))
        #expect(!counted)
        #expect(pair.status.outstanding?.number == 2)
        #expect(pair.status.probeMisses == 1)
    }

    @Test("Failing HTTP checks take a pair down, and keep it from coming up while they fail")
    func httpChecks() {
        var pair = Pair()
        pair.bringUp()
        let checks = [pair.httpCheck(false), pair.httpCheck(true), pair.httpCheck(false), pair.httpCheck(false), pair.httpCheck(false)]
        #expect(checks == [false, false, false, false, true], "a pass resets the count; down at the third failure in a row")
        pair.status.probeRegistered = true
        let whileFailing = (10...13).map { pair.answeredRound(UInt64($0)) }
        #expect(whileFailing == [false, false, false, false], "probes answer, but HTTP still fails")
        _ = pair.httpCheck(true)
        let cameUp = pair.answeredRound(14)
        #expect(cameUp)
    }

    @Test("A device's report takes a pair down at once only if it also missed a probe")
    func deviceReport() {
        var pair = Pair()
        pair.bringUp()
        let whileAnswering = pair.status.reportedSilent()
        #expect(!whileAnswering, "it answers every probe: the device is wrong")
        _ = pair.startRound(4)
        _ = pair.startRound(5)
        let afterMiss = pair.status.reportedSilent()
        let again = pair.status.reportedSilent()
        #expect(afterMiss && !again)
    }
}
