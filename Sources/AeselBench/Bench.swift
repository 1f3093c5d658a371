public import AeselClient
import AeselTesting
import AeselModel
import Foundation

/// `aesel bench`: simulated devices on loopback drive a target and measure end-to-end latency, delivery
/// and throughput. With `baseline`, the same load also runs through the baseline relay in the same
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

        public init(
            load: BenchLoad, url: String?, credential: AeselCredential? = nil, baseline: Bool, serverArguments: [String] = [], layout: BenchLayout = .serve,
            eventSecurities: [String] = []
        ) {
            self.load = load
            self.url = url
            self.credential = credential
            self.baseline = baseline
            self.serverArguments = serverArguments
            self.layout = layout
            self.eventSecurities = eventSecurities
        }
    }

    public let options: Options

    public init(options: Options) {
        self.options = options
    }

    /// One run per target: the baseline first (if asked), then Aesel.
    public func run() async throws -> [BenchResult] {
        var results: [BenchResult] = []
        for target in try makeTargets() {
            results.append(try await measure(target) { devices, destination in
                [BenchRun.run(target: target.name, devices: devices, destination: destination, load: options.load)]
            }[0])
        }
        return results
    }

    /// For each target, the highest input rate it sustains: the load generator kept pace, at most
    /// `lossLimit` percent loss, and a p99 under `p99Limit` microseconds (the sub-millisecond promise; it
    /// also keeps a run from passing by filling the socket buffers). Doubles the rate until a run fails,
    /// then bisects. Returns the result at the highest passing rate per target.
    public func findMaximumRate(lossLimit: Double = 0.1, p99Limit: Double = 1_000, steps: Int = 5) async throws -> [BenchResult] {
        var best: [BenchResult] = []
        for target in try makeTargets() {
            let found = try await measure(target) { devices, destination in
                var load = options.load
                func attempt(_ rate: Double) -> BenchResult {
                    load.ratePerDevice = rate
                    let result = BenchRun.run(target: target.name, devices: devices, destination: destination, load: load)
                    sleepUntil(nanoseconds: monotonicNanoseconds() + 500_000_000)  // drain any backlog
                    return result
                }
                var passing: BenchResult?
                var low = 0.0
                var high = options.load.ratePerDevice
                while true {
                    let result = attempt(high)
                    guard result.keptPace, result.lossPercent <= lossLimit, result.p99 <= p99Limit else { break }
                    passing = result
                    low = high
                    high *= 2
                }
                for _ in 0..<steps {
                    let middle = (low + high) / 2
                    let result = attempt(middle)
                    if result.keptPace, result.lossPercent <= lossLimit, result.p99 <= p99Limit {
                        passing = result
                        low = middle
                    } else {
                        high = middle
                    }
                }
                return passing.map { [$0] } ?? []
            }
            best.append(contentsOf: found)
        }
        return best
    }

    private func makeTargets() throws -> [any BenchTarget] {
        var targets: [any BenchTarget] = []
        if options.baseline { targets.append(BaselineTarget()) }
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

    /// Creates the devices, prepares `target` for them, runs `body`, and always cleans up.
    private func measure(
        _ target: any BenchTarget,
        _ body: ([SimulatedDevice], sockaddr_in) -> [BenchResult]
    ) async throws -> [BenchResult] {
        let run = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        var devices: [SimulatedDevice] = []
        defer {
            devices.forEach { $0.socket.close() }
            target.stop()
        }
        for scene in 0..<options.load.scenes {
            for device in 0..<options.load.devicesPerScene {
                devices.append(
                    SimulatedDevice(
                        socket: try UDPSocket(), key: "bench-\(run)-\(scene)-\(device)", sceneKey: "bench-\(run)-\(scene)", objectKey: "", session: nil)
                )
            }
        }
        let destination = try await target.prepare(&devices, format: options.load.format)
        return body(devices, destination)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
