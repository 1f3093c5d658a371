import AeselModel
import Foundation

/// Renders results as the table `aesel bench` prints, or as JSON.
public enum BenchReport {
    public static func table(_ results: [BenchResult]) -> String {
        let header = ["target", "load", "format", "in/s", "sent", "expected", "delivered", "loss %", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs", "out/s"]
        var rows = [header]
        for result in results {
            let load = result.load
            rows.append([
                result.target,
                "\(load.scenes)x\(load.devicesPerScene)@\(format(load.ratePerDevice))/s",
                load.format.rawValue,
                format(load.inputPerSecond),
                "\(result.sent)",
                "\(result.expected)",
                "\(result.delivered)",
                String(format: "%.3f", result.lossPercent),
                format(result.p50), format(result.p90), format(result.p99), format(result.p999), format(result.max),
                format(result.deliveredPerSecond),
            ])
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        var lines = rows.map { row in
            row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
        if let baseline = results.first(where: { $0.target == "baseline" }), let aesel = results.first(where: { $0.target.hasPrefix("aesel") }) {
            let p99 = aesel.p99 / Swift.max(baseline.p99, 0.001)
            let rate = aesel.load.inputPerSecond / Swift.max(baseline.load.inputPerSecond, 0.001)
            lines.append("aesel/baseline: p50 \(String(format: "%.2f", aesel.p50 / Swift.max(baseline.p50, 0.001)))x, p99 \(String(format: "%.2f", p99))x, input rate \(String(format: "%.0f", rate * 100))%")
        }
        return lines.joined(separator: "\n")
    }

    public static func json(_ results: [BenchResult]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(results), as: UTF8.self)
    }

    private static func format(_ value: Double) -> String {
        value >= 100 ? String(format: "%.0f", value) : String(format: "%.1f", value)
    }
}
