import AeselTesting
import Foundation
import Testing

/// docs/grafana/aesel-dashboard.json queries only what the servers export.
@Suite("Grafana dashboard", .timeLimit(.minutes(2)))
struct GrafanaDashboardTests {
    static let dashboardURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/grafana/aesel-dashboard.json")

    /// The metric names in the dashboard's queries, histograms by their base name.
    static func queriedMetrics() throws -> Set<String> {
        let dashboard = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dashboardURL)) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let expressions = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        let names = try Regex(#"aesel_[a-z_]+"#)
        return Set(expressions.flatMap { $0.matches(of: names).map { String($0.output[0].substring ?? "") } }.map(Self.baseName))
    }

    static func baseName(_ sample: String) -> String {
        let name = String(sample.prefix { $0 != "{" })
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) { return String(name.dropLast(suffix.count)) }
        return name
    }

    @Test("Every metric the dashboard queries is one that aesel serve or Adrestia exports")
    func queriesExportedMetrics() async throws {
        let queried = try Self.queriedMetrics()
        #expect(queried.count >= 15)
        let pair = try TestServer()
        defer { pair.stop() }
        let adrestia = try TestServer("adrestia")
        defer { adrestia.stop() }
        var exported: Set<String> = []
        for server in [pair, adrestia] {
            exported.formUnion(try await server.metrics().keys.map(Self.baseName))
        }
        #expect(queried.subtracting(exported).isEmpty, "not exported: \(queried.subtracting(exported).sorted())")
    }
}
