import Foundation

/// The one line a server process prints on stdout once it listens, e.g.
/// `aesel ready http=127.0.0.1:8080 udp=127.0.0.1:8762`. Tests and the benchmark wait for it.
public enum ReadyLine {
    public static let prefix = "aesel ready"

    public static func print(_ endpoints: [String: String]) {
        let fields = endpoints.keys.sorted().map { "\($0)=\(endpoints[$0]!)" }.joined(separator: " ")
        FileHandle.standardOutput.write(Data("\(prefix) \(fields)\n".utf8))
    }

    /// Parses a ready line into its fields, or nil for any other line.
    public static func parse(_ line: String) -> [String: String]? {
        guard line.hasPrefix(prefix) else { return nil }
        var fields: [String: String] = [:]
        for part in line.dropFirst(prefix.count).split(separator: " ") {
            let pair = part.split(separator: "=", maxSplits: 1)
            if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
        }
        return fields
    }
}
