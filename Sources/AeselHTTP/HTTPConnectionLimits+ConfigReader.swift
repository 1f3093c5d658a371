import AeselModel
public import Configuration
import NIOCore

extension HTTPConnectionLimits {
    /// The limits from `reader`, each defaulting to the memberwise init's value.
    ///
    /// ## Configuration keys
    /// - `http.idle.timeout` (double, optional, default 60): seconds a connection may stay open between requests.
    /// - `http.header.timeout` (double, optional, default 10): seconds from a request's first byte to the end of its head.
    /// - `http.body.timeout` (double, optional, default 30): seconds from the end of a head to the end of its body.
    /// - `http.body.limit` (int, optional, default 1048576): the largest request body in bytes, 1 KiB to 1 GiB;
    ///   a larger one is answered 413.
    /// - `http.max.connections` (int, optional, default 10000): the most connections the listener keeps
    ///   open at once, 1 to 1000000; one more is closed as soon as it is accepted.
    public init(reader: ConfigReader) throws {
        let defaults = HTTPConnectionLimits()
        func seconds(_ key: ConfigKey, _ fallback: TimeAmount) throws -> TimeAmount {
            guard let value = reader.double(forKey: key) else { return fallback }
            guard value > 0, value < 86_400 else {
                throw ConfigurationError(key: key.components.joined(separator: "."), reason: "HTTP timeouts are seconds, above 0 and under a day")
            }
            return .nanoseconds(Int64(value * 1e9))
        }
        let bodyLimit = reader.int(forKey: "http.body.limit", default: defaults.maximumBodySize)
        guard (1 << 10...1 << 30).contains(bodyLimit) else {
            throw ConfigurationError(key: "http.body.limit", reason: "the largest HTTP body is 1024 to 1073741824 bytes")
        }
        let maximumConnections = reader.int(forKey: "http.max.connections", default: defaults.maximumConnections)
        guard (1...1_000_000).contains(maximumConnections) else {
            throw ConfigurationError(key: "http.max.connections", reason: "the most HTTP connections open at once is 1 to 1000000")
        }
        self.init(
            idleTimeout: try seconds("http.idle.timeout", defaults.idleTimeout),
            headerTimeout: try seconds("http.header.timeout", defaults.headerTimeout),
            bodyTimeout: try seconds("http.body.timeout", defaults.bodyTimeout),
            maximumBodySize: bodyLimit,
            maximumConnections: maximumConnections
        )
    }
}
