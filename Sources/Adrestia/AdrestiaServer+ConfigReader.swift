import AeselHTTP
import AeselModel
public import Configuration

extension AdrestiaServer.Configuration {
    /// Adrestia's configuration from `reader`; every key defaults to the memberwise init's value.
    ///
    /// ## Configuration keys
    /// - `host` (string, default 127.0.0.1): the address to listen on (HTTP, and the UDP health probes).
    /// - `advertise.host` (string, optional): where pairs send probes back, when `host` is a wildcard.
    /// - `http.port` (int, default 8080, the original Adrestia's).
    /// - `discovery` (string, default embedded): `embedded`, `etcd://HOST:PORT[/CLUSTER]` or, for etcd
    ///   over TLS, `etcds://HOST:PORT[/CLUSTER]`.
    /// - `probe.interval` (int milliseconds, default 50), `misses` (int, default 3),
    ///   `cross.region.failover` (bool, default false): ``ClusterSettings``.
    /// - `instance.id` (string, default the advertised `host:port`): this instance's name in the leader
    ///   election; keep it the same across restarts.
    /// - `leader.timeout` (int milliseconds, default 500): ``ClusterSettings/leaderTimeout``.
    /// - `http.idle.timeout`, `http.header.timeout`, `http.body.timeout`, `http.body.limit`,
    ///   `http.max.connections`: ``HTTPConnectionLimits``.
    /// - `tls.certificate`, `tls.key`, `tls.ca`: ``TLSSettings``.
    /// - `auth.token.secret`, `auth.api.keys.file`, `cluster.secret`, `metrics.open`, `insecure`: not read
    ///   here but by `AccessControl.load(reader:)`, whose result the command line sets as ``access``.
    public init(reader: ConfigReader) throws {
        let defaults = AdrestiaServer.Configuration()
        let host = reader.string(forKey: "host", default: defaults.host)
        let advertiseHost = reader.string(forKey: "advertise.host")
        if isWildcard(advertiseHost ?? host) {
            throw ConfigurationError(key: "advertise.host", reason: "the host \(host) is a wildcard: give the address pairs reach Adrestia's probes at")
        }
        var discovery = defaults.discovery
        if let text = reader.string(forKey: "discovery") {
            switch DiscoverySetting(text) {
            case .some(.embedded(adrestia: nil)), .some(.etcd): discovery = DiscoverySetting(text)!
            default: throw ConfigurationError(key: "discovery", reason: "Adrestia's discovery is embedded, etcd://HOST:PORT[/CLUSTER] or etcds://HOST:PORT[/CLUSTER]")
            }
        }
        let port = reader.int(forKey: "http.port", default: defaults.httpPort)
        guard (0...65_535).contains(port) else { throw ConfigurationError(key: "http.port", reason: "\(port) is not a port (0 picks a free one)") }
        self.init(
            host: host, advertiseHost: advertiseHost, httpPort: port, discovery: discovery,
            cluster: try ClusterSettings(reader: reader), httpLimits: try HTTPConnectionLimits(reader: reader),
            tls: try TLSSettings(reader: reader), instanceID: reader.string(forKey: "instance.id"))
    }
}

extension ClusterSettings {
    /// ## Configuration keys
    /// - `probe.interval` (int milliseconds, default 50): time between probe rounds.
    /// - `misses` (int, default 3): missed probes in a row after which a pair is down.
    /// - `cross.region.failover` (bool, default false): let a scene move to another region's pair.
    /// - `leader.timeout` (int milliseconds, default 500): how long the leader's etcd key may stay
    ///   unchanged before another instance leads.
    public init(reader: ConfigReader) throws {
        let defaults = ClusterSettings()
        let interval = reader.int(forKey: "probe.interval", default: defaults.probeInterval.wholeMilliseconds)
        let misses = reader.int(forKey: "misses", default: defaults.missesAllowed)
        let leaderTimeout = reader.int(forKey: "leader.timeout", default: defaults.leaderTimeout.wholeMilliseconds)
        // etcd answers in about a millisecond here; below 100 ms a renewal has under 20 ms to land.
        guard leaderTimeout >= 100 else { throw ConfigurationError(key: "leader.timeout", reason: "must be at least 100 milliseconds") }
        guard interval > 0 else { throw ConfigurationError(key: "probe.interval", reason: "must be positive milliseconds") }
        guard misses > 0 else { throw ConfigurationError(key: "misses", reason: "must be positive") }
        self.init(
            probeInterval: .milliseconds(interval), missesAllowed: misses,
            crossRegionFailover: reader.bool(forKey: "cross.region.failover", default: defaults.crossRegionFailover),
            leaderTimeout: .milliseconds(leaderTimeout))
    }
}
