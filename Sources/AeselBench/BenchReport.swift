import AeselModel
import Foundation

/// Renders results as the table `aesel bench` prints, or as JSON.
public enum BenchReport {
    public static func table(_ results: [BenchResult]) -> String {
        let header = ["target", "load", "format", "in/s", "sent/s", "sent", "expected", "delivered", "loss %", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs", "out/s"]
        var rows = [header]
        for result in results {
            let load = result.load
            rows.append([
                result.target,
                "\(load.scenes)x\(load.devicesPerScene)@\(format(load.ratePerDevice))/s",
                load.format.rawValue,
                format(load.inputPerSecond),
                format(result.sentPerSecond),
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
        let aesels = results.filter { $0.target.hasPrefix("aesel") }
        if let baseline = results.first(where: { $0.target == "baseline" }) {
            for aesel in aesels { lines.append(ratio(aesel, to: baseline)) }
        }
        if let sealed = aesels.first(where: { $0.target.hasSuffix("-sealed") }), let plaintext = aesels.first(where: { $0.target.hasSuffix("-plaintext") }) {
            lines.append(ratio(sealed, to: plaintext))
        }
        return lines.joined(separator: "\n")
    }

    /// Same-run ratios of `result` to `reference`: latency percentiles, and the input rate (what
    /// `--find-max` compares).
    private static func ratio(_ result: BenchResult, to reference: BenchResult) -> String {
        func times(_ value: Double, _ base: Double) -> String { String(format: "%.2f", value / Swift.max(base, 0.001)) + "x" }
        let rate = result.sentPerSecond / Swift.max(reference.sentPerSecond, 0.001) * 100
        return "\(result.target)/\(reference.target): p50 \(times(result.p50, reference.p50)), p99 \(times(result.p99, reference.p99)), input rate \(String(format: "%.0f", rate))%"
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
