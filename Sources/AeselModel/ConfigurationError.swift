/// A configuration value a process cannot start with. The message names its key (`http.port`, also
/// `--http-port` and `AESEL_HTTP_PORT`).
public typealias ConfigurationError = AeselError<ConfigurationErrorCode>

public enum ConfigurationErrorCode: String, AeselErrorCode {
    /// A value that does not parse, is out of range, or contradicts another.
    case invalid
}

extension AeselError where ErrorCode == ConfigurationErrorCode {
    /// `key`'s value cannot be used, for `reason`.
    public init(key: String, reason: String, file: String = #fileID, line: Int = #line) {
        self.init(.invalid, key.isEmpty ? reason : "\(key): \(reason)", file: file, line: line)
    }
}

extension Duration {
    /// The duration in whole milliseconds, as options give it.
    public var wholeMilliseconds: Int {
        Int(components.seconds) * 1000 + Int(components.attoseconds / 1_000_000_000_000_000)
    }
}
