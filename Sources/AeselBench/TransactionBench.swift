public import AeselClient
import AeselModel
import AeselWire
import AsyncHTTPClient
import Foundation
import Histogram
import NIOCore
import NIOHTTP1

/// `aesel bench --transactions`: HTTP transactions per second and latency, with concurrent clients,
/// for the calls devices and tools make most: object create, get, update and query, and registration.
public struct TransactionBench: Sendable {
    public struct Result: Sendable, Codable {
        public var operation: String
        public var store: String
        public var clients: Int
        public var completed: Int
        public var failed: Int
        public var perSecond: Double
        public var p50: Double
        public var p99: Double
        public var max: Double
    }

    public var url: String?
    public var credential: AeselCredential?
    /// `aesel serve --store` for a server the benchmark starts; nil for SQLite.
    public var store: String?
    public var clients: Int
    public var seconds: Double

    public init(url: String?, credential: AeselCredential? = nil, store: String?, clients: Int, seconds: Double) {
        self.url = url
        self.credential = credential
        self.store = store
        self.clients = clients
        self.seconds = seconds
    }

    public func run() async throws -> [Result] {
        let target = try AeselTarget(url: url, credential: credential, serverArguments: store.map { ["--store", $0] } ?? [])
        defer { target.stop() }
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = clients
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let results = try await measureAll(client: client, base: target.url)
            try await client.shutdown()
            return results
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private func measureAll(client: HTTPClient, base: String) async throws -> [Result] {
        let run = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let scene = "tx-\(run)"
        _ = try await send(client, "PUT", base + "/v1/scene/\(scene)", "{}")
        // Objects to read and update: one set per client, so updates do not queue on one row.
        var keys: [String] = []
        for index in 0..<(clients * 8) {
            let reply = try await send(client, "POST", base + "/v1/scene/\(scene)/object", #"{"objects":[{"name":"seed-\#(index % 50)","type":"Mesh"}]}"#)
            if let key = (try? JSONDecoder().decode(ObjectList.self, from: reply))?.items?.first?.key { keys.append(key) }
        }
        let seeded = keys
        let storeName = store == nil ? "sqlite" : "postgres"
        let operations: [(String, @Sendable (Int, Int) -> (String, String, String?))] = [
            ("object create", { _, _ in ("POST", "/v1/scene/\(scene)/object", #"{"objects":[{"name":"bench","type":"Mesh"}]}"#) }),
            ("object get", { client, step in ("GET", "/v1/scene/\(scene)/object/\(seeded[(client * 8 + step) % seeded.count])", nil) }),
            ("object update", { client, step in ("POST", "/v1/scene/\(scene)/object/\(seeded[(client * 8 + step % 8) % seeded.count])", #"{"objects":[{"name":"renamed-\#(step)"}]}"#) }),
            ("object query", { _, step in ("POST", "/v1/scene/\(scene)/object/query", #"{"num_records":10,"objects":[{"name":"seed-\#(step % 50)"}]}"#) }),
            ("registration", { client, step in
                ("POST", "/v1/scene/\(scene)/register", #"{"scenes":[{"devices":[{"key":"d-\#(client)-\#(step)","hostname":"127.0.0.1","port":\#(20000 + step % 40000)}]}]}"#)
            }),
        ]
        var results: [Result] = []
        for (name, request) in operations {
            results.append(try await measure(name, store: storeName, client: client, base: base, request: request))
        }
        return results
    }

    private func measure(
        _ name: String, store: String, client: HTTPClient, base: String, request: @escaping @Sendable (Int, Int) -> (String, String, String?)
    ) async throws -> Result {
        let deadline = ContinuousClock.now + .seconds(seconds)
        let perClient = try await withThrowingTaskGroup(of: (Histogram<UInt64>, Int).self) { group in
            for index in 0..<clients {
                group.addTask {
                    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
                    var failed = 0
                    var step = 0
                    while ContinuousClock.now < deadline {
                        let (method, path, body) = request(index, step)
                        let start = monotonicNanoseconds()
                        if (try? await send(client, method, base + path, body)) != nil {
                            _ = histogram.record(monotonicNanoseconds() - start)
                        } else {
                            failed += 1
                        }
                        step += 1
                    }
                    return (histogram, failed)
                }
            }
            return try await group.reduce(into: [(Histogram<UInt64>, Int)]()) { $0.append($1) }
        }
        var total = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        for (histogram, _) in perClient { total.add(histogram) }
        return Result(
            operation: name,
            store: store,
            clients: clients,
            completed: Int(total.totalCount),
            failed: perClient.reduce(0) { $0 + $1.1 },
            perSecond: Double(total.totalCount) / seconds,
            p50: Double(total.valueAtPercentile(50)) / 1000,
            p99: Double(total.valueAtPercentile(99)) / 1000,
            max: Double(total.max) / 1000
        )
    }

    /// Sends one request; a reply other than 200 with err_code 100 counts as a failure.
    private func send(_ client: HTTPClient, _ method: String, _ url: String, _ body: String?) async throws -> Data {
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        if let credential { request.headers.add(name: credential.header.name, value: credential.header.value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(10))
        let bytes = Data(try await response.body.collect(upTo: 1 << 22).readableBytesView)
        let code = (try? JSONSerialization.jsonObject(with: bytes) as? [String: Any])?["err_code"] as? Int
        guard response.status == .ok, code == 100 else {
            throw BenchError.server("\(method) \(url): \(response.status.code)")
        }
        return bytes
    }

    public static func table(_ results: [Result]) -> String {
        var lines = ["operation       store     clients  completed  failed  per second  p50 ms  p99 ms  max ms"]
        for result in results {
            lines.append(
                result.operation.padding(toLength: 16, withPad: " ", startingAt: 0) + result.store.padding(toLength: 10, withPad: " ", startingAt: 0)
                    + String(format: "%7d  %9d  %6d  %10.0f  %6.2f  %6.2f  %6.1f", result.clients, result.completed, result.failed, result.perSecond, result.p50 / 1000, result.p99 / 1000, result.max / 1000)
            )
        }
        return lines.joined(separator: "\n")
    }
}
