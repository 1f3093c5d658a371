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
        for baseline in results where baseline.target.hasPrefix("baseline") {
            for aesel in aesels { lines.append(ratio(aesel, to: baseline)) }
        }
        if let sealed = aesels.first(where: { $0.target.hasSuffix("-sealed") }), let plaintext = aesels.first(where: { $0.target.hasSuffix("-plaintext") }) {
            lines.append(ratio(sealed, to: plaintext))
        }
        return lines.joined(separator: "\n")
    }

    /// Same-run ratios of `result` to `reference`: latency percentiles, and the input rate (what
    /// `--find-max` compares); with rounds, each round's ratios and their medians on the next line.
    private static func ratio(_ result: BenchResult, to reference: BenchResult) -> String {
        func quotient(_ value: Double, _ base: Double) -> Double { value / Swift.max(base, 0.001) }
        func times(_ value: Double) -> String { String(format: "%.2f", value) + "x" }
        func percent(_ value: Double) -> String { String(format: "%.0f", value * 100) + "%" }
        let name = "\(result.target)/\(reference.target)"
        var line =
            "\(name): p50 \(times(quotient(result.p50, reference.p50))), p99 \(times(quotient(result.p99, reference.p99))), "
            + "input rate \(percent(quotient(result.sentPerSecond, reference.sentPerSecond)))"
        guard result.rounds.count > 1, result.rounds.count == reference.rounds.count else { return line }
        let rounds = zip(result.rounds, reference.rounds)
        let p50s = rounds.map { quotient($0.p50, $1.p50) }
        let p99s = rounds.map { quotient($0.p99, $1.p99) }
        let rates = rounds.map { quotient($0.sentPerSecond, $1.sentPerSecond) }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        line += "\n\(name) by round: p50 \(p50s.map(times).joined(separator: " ")); p99 \(p99s.map(times).joined(separator: " "))"
        line += "; input rate \(rates.map(percent).joined(separator: " "))"
        line += "\n\(name) median of rounds: p50 \(times(median(p50s))), p99 \(times(median(p99s))), input rate \(percent(median(rates)))"
        return line
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
