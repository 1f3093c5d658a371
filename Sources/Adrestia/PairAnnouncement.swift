import AeselWire
import Foundation
import NIOCore

/// What a CLyman/CrazyIvan pair tells discovery about itself (DESIGN.md section 5). Addresses are
/// `host:port`; the HTTP ones are base URLs.
public struct PairAnnouncement: Sendable, Hashable, Codable {
    public var id: String
    public var region: String
    /// Where devices send events: CLyman's UDP port.
    public var clymanUDP: String
    public var clymanHTTP: String
    public var crazyIvanHTTP: String

    public init(id: String, region: String, clymanUDP: String, clymanHTTP: String, crazyIvanHTTP: String) {
        self.id = id
        self.region = region
        self.clymanUDP = clymanUDP
        self.clymanHTTP = clymanHTTP
        self.crazyIvanHTTP = crazyIvanHTTP
    }

    enum CodingKeys: String, CodingKey {
        case id = "pair"
        case region
        case clymanUDP = "clyman_udp"
        case clymanHTTP = "clyman_http"
        case crazyIvanHTTP = "crazyivan_http"
    }

    /// CLyman's UDP endpoint, split; an IPv6 host is in brackets.
    public var udpHostAndPort: (host: String, port: Int)? {
        guard let colon = clymanUDP.lastIndex(of: ":"), let port = Int(clymanUDP[clymanUDP.index(after: colon)...]), (1...65535).contains(port) else {
            return nil
        }
        let host = clymanUDP[..<colon]
        return (host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : String(host), port)
    }

    /// What a device of one of the pair's scenes is told: the pair's CLyman UDP endpoint.
    var eventEndpoint: EventEndpoint {
        let (host, port) = udpHostAndPort ?? ("", 0)
        return EventEndpoint(host: host, port: port, pair: id, region: region)
    }

    /// Why Adrestia cannot use this announcement, or nil: devices and probes need a unicast IP address
    /// and a port, and the halves an HTTP base URL.
    var problem: String? {
        guard !id.isEmpty, EventCodec.isValidKey(id) else { return "the pair id is empty or too long" }
        guard let (host, port) = udpHostAndPort, (try? SocketAddress(ipAddress: host, port: port)) != nil else {
            return "clyman_udp must be IP:PORT, got \(clymanUDP)"
        }
        guard host != "0.0.0.0", host != "::" else { return "clyman_udp names a wildcard address; announce with --advertise-host" }
        for url in [clymanHTTP, crazyIvanHTTP] {
            guard let parsed = URL(string: url), parsed.scheme == "http" || parsed.scheme == "https", parsed.host != nil else {
                return "not an HTTP base URL: \(url)"
            }
        }
        return nil
    }
}
