import AeselModel
public import Configuration
import Foundation

extension LocalCluster.Configuration {
    /// `aesel cluster`'s configuration from `reader`; every key defaults to the memberwise init's value.
    ///
    /// ## Configuration keys
    /// - `cluster.adrestia` (int, default 2): how many Adrestia instances run.
    /// - `cluster.pairs` (string, default `east=2,west=1`): the regions and how many pairs each runs,
    ///   `REGION=COUNT` separated by commas (`REGION` alone is one pair).
    /// - `log.level` (string, default warning): the children's log level.
    public init(reader: ConfigReader) throws {
        let defaults = LocalCluster.Configuration()
        let adrestia = reader.int(forKey: "cluster.adrestia", default: defaults.adrestia)
        guard (1...16).contains(adrestia) else { throw ConfigurationError(key: "cluster.adrestia", reason: "\(adrestia) is not 1 to 16 instances") }
        var regions = defaults.regions
        if let text = reader.string(forKey: "cluster.pairs") {
            regions = try Self.regions(text)
        }
        let logLevel = reader.string(forKey: "log.level", default: defaults.logLevel)
        let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
        guard levels.contains(logLevel) else {
            throw ConfigurationError(key: "log.level", reason: "\(logLevel) is not \(levels.dropLast().joined(separator: ", ")) or critical")
        }
        self.init(adrestia: adrestia, regions: regions, logLevel: logLevel)
    }

    /// Parses `east=2,west=1`.
    static func regions(_ text: String) throws -> [Region] {
        var regions: [Region] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            let name = parts[0]
            let count = parts.count == 2 ? Int(parts[1]) : 1
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }), let count, (1...16).contains(count) else {
                throw ConfigurationError(key: "cluster.pairs", reason: "\(item) is not REGION=COUNT (a name of letters, digits, - and _; 1 to 16 pairs)")
            }
            guard !regions.contains(where: { $0.name == name }) else {
                throw ConfigurationError(key: "cluster.pairs", reason: "region \(name) is given twice")
            }
            regions.append(Region(name, pairs: count))
        }
        return regions
    }
}
