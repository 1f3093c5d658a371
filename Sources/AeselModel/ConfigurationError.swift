/// A configuration value a process cannot start with, naming its key (`http.port`, also `--http-port` and
/// `AESEL_HTTP_PORT`).
public struct ConfigurationError: Error, CustomStringConvertible {
    public var key: String
    public var reason: String

    public init(key: String, reason: String) {
        self.key = key
        self.reason = reason
    }

    public var description: String { key.isEmpty ? reason : "\(key): \(reason)" }
}

extension Duration {
    /// The duration in whole milliseconds, as options give it.
    public var wholeMilliseconds: Int {
        Int(components.seconds) * 1000 + Int(components.attoseconds / 1_000_000_000_000_000)
    }
}
