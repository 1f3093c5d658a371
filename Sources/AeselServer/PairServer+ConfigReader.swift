import Adrestia
import AeselHTTP
import AeselModel
import AeselSealing
public import Configuration
import CLyman
import CrazyIvan
import Foundation

extension PairServer.Configuration {
    /// A role's configuration from `reader`; every key defaults to the memberwise init's value.
    ///
    /// ## Configuration keys
    /// - `host` (string, default 127.0.0.1): the address to listen on (HTTP and UDP).
    /// - `advertise.host` (string, optional): the host devices send events to, in registration answers and
    ///   (role `pair`) the pair's announcement; not a wildcard. Without it: `host`, or with a wildcard
    ///   `host` the address each request came in on.
    /// - `http.port` (int, default by role: ``PairServer/Role/defaultHTTPPort``), `udp.port` (int, default 8762).
    /// - `data` (string, default ./aesel-data), `store`, `store.file`: see ``StoreLocation/init(reader:)``.
    /// - `stream` (string, default memory): the change stream (``StreamSetting``).
    /// - `echo.to.sender` (bool, default false), `persist.interval` (int milliseconds, default 200).
    /// - `discovery`, `region` (default "default"), `pair.id`: a pair behind Adrestia (role `pair` only);
    ///   it needs `advertise.host` when `host` is a wildcard.
    /// - `cache.ttl`, `cache.refresh.interval`, `forward.while.loading`, `region`: the Scene-Device cache
    ///   (``SceneDeviceCache/Configuration/init(reader:region:)``).
    /// - `http.idle.timeout`, `http.header.timeout`, `http.body.timeout`, `http.body.limit`,
    ///   `http.max.connections`: ``HTTPConnectionLimits``.
    /// - `tls.certificate`, `tls.key`, `tls.ca`: ``TLSSettings``.
    /// - `event.security` (`sealed`, `plaintext` or `aes-cbc`; default ``PairServer/EventSecurity/standard(role:host:)``).
    /// - `event.aes.in.key`, `.iv`, `.password`, `.salt` and `event.aes.out.…`: with `aes-cbc`, the
    ///   original's secrets (devices to CLyman, CrazyIvan to devices; reference 2.5). Secrets: give them in
    ///   the environment (`AESEL_EVENT_AES_IN_KEY`) or the config file, not on the command line.
    /// - `event.rate` (int, default 2000; 0: no limit), `event.burst` (int, default 500): each device's
    ///   events a second on the UDP path, after a burst (``EventRateLimit``).
    /// - `auth.token.secret`, `auth.api.keys.file`, `cluster.secret`, `metrics.open`, `insecure`: not read
    ///   here but by `AccessControl.load(reader:)`, whose result the command line sets as ``access`` after
    ///   protected mode has passed it.
    public init(role: PairServer.Role, reader: ConfigReader) throws {
        let defaults = PairServer.Configuration(role: role)
        let store = try StoreLocation(reader: reader)
        let stream = try reader.string(forKey: "stream").map { text in
            guard let setting = StreamSetting(text) else {
                throw ConfigurationError(key: "stream", reason: "\(text) is not memory, zmq+inproc://…, zmq+ipc://…, zmq+tcp://…, kafka://… or udp://…")
            }
            return setting
        }
        let persistMilliseconds = reader.int(forKey: "persist.interval", default: defaults.persistInterval.wholeMilliseconds)
        guard persistMilliseconds > 0 else { throw ConfigurationError(key: "persist.interval", reason: "must be positive milliseconds") }
        let host = reader.string(forKey: "host", default: defaults.host)
        let advertiseHost = reader.string(forKey: "advertise.host")
        if let advertiseHost, advertiseHost.isEmpty || isWildcard(advertiseHost) {
            throw ConfigurationError(key: "advertise.host", reason: "\(advertiseHost) is not an address others can reach this server at")
        }
        let identity = role == .pair ? try PairServer.PairIdentity(reader: reader) : nil
        let eventSecurity = try reader.string(forKey: "event.security").map { text in
            guard let security = PairServer.EventSecurity(rawValue: text) else {
                throw ConfigurationError(key: "event.security", reason: "\(text) is not sealed, plaintext or aes-cbc")
            }
            return security
        }
        let rate = reader.int(forKey: "event.rate", default: EventRateLimit.standard.perSecond)
        let burst = reader.int(forKey: "event.burst", default: EventRateLimit.standard.burst)
        guard rate >= 0, burst >= 1 else { throw ConfigurationError(key: "event.rate", reason: "the rate must be 0 (no limit) or more, the burst 1 or more") }
        var originalSecrets: OriginalEventCipher.Secrets?
        if eventSecurity == .original {
            func secret(_ direction: String) throws -> OriginalEventCipher.Secret {
                guard let key = reader.string(forKey: ConfigKey("event.aes.\(direction).key"), isSecret: true),
                    let iv = reader.string(forKey: ConfigKey("event.aes.\(direction).iv"), isSecret: true)
                else { throw ConfigurationError(key: "event.aes.\(direction).key", reason: "aes-cbc needs event.aes.in and event.aes.out key and iv") }
                return OriginalEventCipher.Secret(
                    key: key, iv: iv, password: reader.string(forKey: ConfigKey("event.aes.\(direction).password"), isSecret: true) ?? "",
                    salt: reader.string(forKey: ConfigKey("event.aes.\(direction).salt"), isSecret: true) ?? "")
            }
            originalSecrets = OriginalEventCipher.Secrets(toPair: try secret("in"), toDevice: try secret("out"))
        }
        if identity != nil, advertiseHost == nil, isWildcard(host) {
            throw ConfigurationError(key: "advertise.host", reason: "the host \(host) is a wildcard: give the address others reach this pair at")
        }
        self.init(
            role: role,
            host: host,
            advertiseHost: advertiseHost,
            httpPort: try Self.port(reader, "http.port", default: defaults.httpPort),
            udpPort: try Self.port(reader, "udp.port", default: defaults.udpPort),
            dataFolder: store.dataFolder,
            store: store.url,
            fanOut: FanOut.Configuration(echoToSender: reader.bool(forKey: "echo.to.sender", default: defaults.fanOut.echoToSender)),
            cache: try SceneDeviceCache.Configuration(reader: reader, region: identity?.region),
            stream: stream ?? defaults.stream,
            persistInterval: .milliseconds(persistMilliseconds),
            identity: identity,
            httpLimits: try HTTPConnectionLimits(reader: reader),
            eventSecurity: eventSecurity,
            originalSecrets: originalSecrets,
            eventRateLimit: EventRateLimit(perSecond: rate, burst: burst),
            tls: try TLSSettings(reader: reader)
        )
    }

    static func port(_ reader: ConfigReader, _ key: ConfigKey, default fallback: Int) throws -> Int {
        let port = reader.int(forKey: key, default: fallback)
        guard (0...65_535).contains(port) else {
            throw ConfigurationError(key: key.components.joined(separator: "."), reason: "\(port) is not a port (0 picks a free one)")
        }
        return port
    }
}

extension PairServer.PairIdentity {
    /// Nil without a `discovery` key: the pair then runs alone.
    init?(reader: ConfigReader) throws {
        guard let text = reader.string(forKey: "discovery") else { return nil }
        switch DiscoverySetting(text) {
        case .embedded(adrestia: .some)?, .etcd?: break
        default: throw ConfigurationError(key: "discovery", reason: "a pair's discovery is Adrestia's base URL (http://HOST:PORT or https://HOST:PORT), etcd://HOST:PORT or etcds://HOST:PORT")
        }
        guard let pairID = reader.string(forKey: "pair.id"), !pairID.isEmpty else {
            throw ConfigurationError(key: "pair.id", reason: "a pair with a discovery needs an id, unique in the cluster")
        }
        self.init(pairID: pairID, region: reader.string(forKey: "region", default: ClusterSettings().defaultRegion), discovery: DiscoverySetting(text)!)
    }
}

extension SceneDeviceCache.Configuration {
    /// ## Configuration keys
    /// - `cache.ttl` (int seconds, default 300): how long an entry lives from its load; the next event
    ///   after that reloads it, and one refresh interval later an unused entry leaves memory.
    /// - `cache.refresh.interval` (int milliseconds, default 2000): time between background refreshes of
    ///   the live entries (and of the region's pinned scenes) from the store.
    /// - `forward.while.loading` (bool, default false): send the events of a scene that is loading to the
    ///   devices known so far instead of holding them until the load ends.
    /// - `region` (string, optional): the scenes of this region are pinned. `region` is the pair's region
    ///   when it has a discovery, so it defaults to the cluster's default region there.
    init(reader: ConfigReader, region: String?) throws {
        let defaults = SceneDeviceCache.Configuration()
        let seconds = reader.int(forKey: "cache.ttl", default: Int(defaults.timeToLive.components.seconds))
        guard seconds > 0 else { throw ConfigurationError(key: "cache.ttl", reason: "must be positive seconds") }
        let refresh = reader.int(forKey: "cache.refresh.interval", default: defaults.refreshInterval.wholeMilliseconds)
        guard refresh > 0 else { throw ConfigurationError(key: "cache.refresh.interval", reason: "must be positive milliseconds") }
        self.init(
            timeToLive: .seconds(seconds), refreshInterval: .milliseconds(refresh),
            forwardWhileLoading: reader.bool(forKey: "forward.while.loading", default: defaults.forwardWhileLoading),
            pinnedRegion: region ?? reader.string(forKey: "region").flatMap { $0.isEmpty ? nil : $0 })
    }
}

extension StoreLocation {
    /// ## Configuration keys
    /// - `data` (string, default ./aesel-data): the data folder; the SQLite file lives here.
    /// - `store` (string, secret, optional): a shared PostgreSQL store, `postgres://user[:password]@host:port/database`,
    ///   with `?sslmode=require|verify-ca|verify-full` (and `sslrootcert=PATH`) for TLS.
    /// - `store.file` (string, optional): a file holding that URL, so the password is in neither `ps` nor
    ///   the environment.
    /// - `tls.ca` (string, optional): the certificate authorities a verifying PostgreSQL connection
    ///   trusts when its URL names no `sslrootcert`.
    public init(reader: ConfigReader) throws {
        var url = reader.string(forKey: "store", isSecret: true)
        if url == nil, let path = reader.string(forKey: "store.file") {
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError(key: "store.file", reason: "cannot read \(path)")
            }
            url = String(decoding: contents, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        self.init(
            url: url, dataFolder: reader.string(forKey: "data", default: StoreLocation.defaultDataFolder),
            certificateAuthority: reader.string(forKey: "tls.ca"))
    }
}
