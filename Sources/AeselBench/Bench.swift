public import AeselClient
import AeselTesting
import AeselModel
import Foundation

/// `aesel bench`: simulated devices on loopback drive a target and measure end-to-end latency, delivery
/// and throughput. With `baseline`, the same load also runs through the baseline relays in the same
/// invocation, so that every figure can be read as a ratio taken side by side.
public struct Bench: Sendable {
    public struct Options: Sendable {
        public var load: BenchLoad
        /// A running server's base URL; nil starts one.
        public var url: String?
        /// What the benchmark's HTTP calls to `url` carry (one the benchmark starts runs open on loopback).
        public var credential: AeselCredential?
        public var baseline: Bool
        /// Extra `aesel serve` arguments for a server the benchmark starts, e.g. `--stream zmq+ipc:///tmp/s`.
        public var serverArguments: [String]
        public var layout: BenchLayout
        /// With no `url`: one Aesel target per value of `--event-security` (`sealed`, `plaintext`), side
        /// by side in this order; empty for one target with the server's default.
        public var eventSecurities: [String]
        /// How many times each measurement repeats, the targets taking turns in each round.
        public var rounds: Int

        public init(
            load: BenchLoad, url: String?, credential: AeselCredential? = nil, baseline: Bool, serverArguments: [String] = [], layout: BenchLayout = .serve,
            eventSecurities: [String] = [], rounds: Int = 1
        ) {
            self.load = load
            self.url = url
            self.credential = credential
            self.baseline = baseline
            self.serverArguments = serverArguments
            self.layout = layout
            self.eventSecurities = eventSecurities
            self.rounds = rounds
        }
    }

    public let options: Options

    public init(options: Options) {
        self.options = options
    }

    /// One measurement per target, repeated `options.rounds` times with the targets interleaved in each
    /// round (the baselines first, then each Aesel target), so that noise on a shared machine falls on all of
    /// them alike. Returns each target's rounds merged, with the rounds themselves in `rounds`.
    public func run() async throws -> [BenchResult] {
        try await withPreparedTargets { prepared in
            var samples = [BenchSample?](repeating: nil, count: prepared.count)
            var rounds = [[BenchResult]](repeating: [], count: prepared.count)
            for _ in 0..<options.rounds {
                for (index, target) in prepared.enumerated() {
                    let sample = BenchRun.run(devices: target.devices, destination: target.destination, load: options.load)
                    rounds[index].append(sample.result(target: target.name))
                    samples[index] = samples[index].map { $0.merged(with: sample) } ?? sample
                }
            }
            return prepared.indices.map { index in
                var merged = samples[index]!.result(target: prepared[index].name)
                if options.rounds > 1 { merged.rounds = rounds[index] }
                return merged
            }
        }
    }

    /// For each target, the highest input rate it sustains: the load generator kept pace, at most
    /// `lossLimit` percent loss, and a p99 under `p99Limit` microseconds (the sub-millisecond promise; it
    /// also keeps a run from passing by filling the socket buffers). Each search doubles the rate until a
    /// run fails, then bisects; the targets' searches go in lockstep, one attempt each in turn. With
    /// several rounds, the whole search repeats: a target's result is its median round's, with every
    /// round in `rounds`.
    public func findMaximumRate(lossLimit: Double = 0.1, p99Limit: Double = 1_000, steps: Int = 5) async throws -> [BenchResult] {
        try await withPreparedTargets { prepared in
            var rounds = [[BenchResult]](repeating: [], count: prepared.count)
            for _ in 0..<options.rounds {
                var searches = prepared.map { _ in RateSearch(start: options.load.ratePerDevice, steps: steps) }
                while let _ = searches.firstIndex(where: { $0.nextRate != nil }) {
                    for (index, target) in prepared.enumerated() {
                        guard let rate = searches[index].nextRate else { continue }
                        var load = options.load
                        load.ratePerDevice = rate
                        let result = BenchRun.run(devices: target.devices, destination: target.destination, load: load).result(target: target.name)
                        sleepUntil(nanoseconds: monotonicNanoseconds() + 500_000_000)  // drain any backlog
                        searches[index].record(result, passed: result.keptPace && result.lossPercent <= lossLimit && result.p99 <= p99Limit)
                    }
                }
                for index in prepared.indices {
                    if let passing = searches[index].passing { rounds[index].append(passing) }
                }
            }
            return rounds.compactMap { found in
                guard !found.isEmpty else { return nil }
                var median = found.sorted { $0.sentPerSecond < $1.sentPerSecond }[found.count / 2]
                if options.rounds > 1 { median.rounds = found }
                return median
            }
        }
    }

    /// One target's search for its highest passing rate: doubling, then bisecting for `steps` attempts.
    private struct RateSearch {
        var low = 0.0
        var high: Double
        var doubling = true
        var stepsLeft: Int
        var passing: BenchResult?

        init(start: Double, steps: Int) {
            high = start
            stepsLeft = steps
        }

        /// The rate to try next; nil when the search is over.
        var nextRate: Double? {
            if doubling { return high }
            return stepsLeft > 0 ? (low + high) / 2 : nil
        }

        mutating func record(_ result: BenchResult, passed: Bool) {
            let rate = nextRate!
            if doubling {
                guard passed else {
                    doubling = false
                    return
                }
                passing = result
                low = rate
                high = rate * 2
                return
            }
            stepsLeft -= 1
            if passed {
                passing = result
                low = rate
            } else {
                high = rate
            }
        }
    }

    private func makeTargets() throws -> [any BenchTarget] {
        var targets: [any BenchTarget] = []
        if options.baseline {
            targets += [BaselineTarget(.plain), BaselineTarget(.batched)]
            // A ZeroMQ stream's own floor: the same transport between two threads of a bare relay.
            if let stream = options.serverArguments.firstIndex(of: "--stream").map({ options.serverArguments[$0 + 1] }),
                let mode = BaselineRelay.Mode(name: stream.prefix { $0 != ":" }.lowercased())
            {
                targets.append(BaselineTarget(mode))
            }
        }
        guard options.url == nil, !options.eventSecurities.isEmpty else {
            targets.append(try AeselTarget(url: options.url, credential: options.credential, serverArguments: options.serverArguments, layout: options.layout))
            return targets
        }
        for security in options.eventSecurities {
            targets.append(
                try AeselTarget(
                    url: nil, serverArguments: options.serverArguments + ["--event-security", security], layout: options.layout,
                    nameSuffix: "-" + security))
        }
        return targets
    }

    /// A target with its devices registered, and where they send.
    private struct PreparedTarget {
        let target: any BenchTarget
        let devices: [SimulatedDevice]
        let destination: sockaddr_in
        var name: String { target.name }
    }

    /// Starts every target and creates its own devices, all kept alive while `body` runs (so rounds
    /// can interleave them), and always cleans up.
    private func withPreparedTargets(_ body: ([PreparedTarget]) -> [BenchResult]) async throws -> [BenchResult] {
        let run = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        var prepared: [PreparedTarget] = []
        var started: [any BenchTarget] = []
        var sockets: [UDPSocket] = []
        defer {
            sockets.forEach { $0.close() }
            started.forEach { $0.stop() }
        }
        for (number, target) in try makeTargets().enumerated() {
            started.append(target)
            var devices: [SimulatedDevice] = []
            for scene in 0..<options.load.scenes {
                for device in 0..<options.load.devicesPerScene {
                    let socket = try UDPSocket()
                    sockets.append(socket)
                    devices.append(
                        SimulatedDevice(
                            socket: socket, key: "bench-\(run)-\(number)-\(scene)-\(device)", sceneKey: "bench-\(run)-\(number)-\(scene)", objectKey: "",
                            session: nil))
                }
            }
            let destination = try await target.prepare(&devices, format: options.load.format)
            prepared.append(PreparedTarget(target: target, devices: devices, destination: destination))
        }
        return body(prepared)
    }
}
