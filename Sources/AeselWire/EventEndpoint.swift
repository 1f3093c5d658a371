/// `GET /v1/scene/{key}/endpoint`: where a device of the scene sends its events, the CLyman UDP endpoint
/// of the scene's pair, and which pair and region that is.
public struct EventEndpoint: Codable, Sendable, Hashable {
    public var host: String
    public var port: Int
    public var pair: String
    public var region: String

    public init(host: String, port: Int, pair: String, region: String) {
        self.host = host
        self.port = port
        self.pair = pair
        self.region = region
    }

    enum CodingKeys: String, CodingKey {
        case host = "event_destination_host"
        case port = "event_destination_port"
        case pair, region
    }
}
