import AeselModel
import AeselSealing
import AeselWire
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOConcurrencyHelpers
import NIOSSL

/// The gateway routes the client uses: registration, deregistration and the endpoint of the scene.
///
/// With several gateway URLs (Adrestia instances), a call goes to the one that answered last; one that
/// cannot be reached, times out or answers 502, 503 or 504 is passed over for the next, in order.
struct Gateway: Sendable {
    let bases: [String]
    let sceneKey: String
    let http: HTTPClient
    let credential: AeselCredential?
    /// The index in `bases` of the gateway that answered last.
    private let current = NIOLockedValueBox(0)

    init(_ configuration: AeselClientConfiguration) throws {
        try self.init(configuration, http: Self.client(trusting: configuration.certificateAuthorityPath))
    }

    init(_ configuration: AeselClientConfiguration, http: HTTPClient) {
        bases = configuration.gateways.map { base in
            var base = base
            while base.hasSuffix("/") { base.removeLast() }
            return base
        }
        self.sceneKey = configuration.sceneKey
        self.http = http
        credential = configuration.credential
    }

    private var scenePath: String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove("/")
        return "/v1/scene/" + (sceneKey.addingPercentEncoding(withAllowedCharacters: allowed) ?? sceneKey)
    }

    /// Registers the device receiving on `host:port`; returns the event endpoint the answer names.
    /// Registers the device; returns its event endpoint, and its session when the pair seals events.
    func register(deviceKey: String, host: String, port: Int, format: EventFormat) async throws -> (endpoint: SocketAddress, session: DeviceSession?) {
        let device = DeviceJSON(key: deviceKey, hostname: host, port: port, format: format)
        let (answer, base): (SceneList, String) = try await call(.POST, scenePath + "/register", body: SceneList(scenes: [SceneJSON(key: sceneKey, devices: [device])]))
        if let code = answer.errorCode, code != .noError {
            throw AeselClientError.refused(status: 200, code: code.rawValue, message: answer.errorMessage ?? "")
        }
        guard let host = answer.eventDestinationHost, let port = answer.eventDestinationPort else {
            throw AeselClientError(.invalidAnswer, "no event_destination_host/port")
        }
        let session = DeviceSession(keyID: answer.sessionKeyID, secret: answer.sessionKey, sceneKey: sceneKey, deviceKey: deviceKey)
        if answer.eventSecurity == "sealed", session == nil { throw AeselClientError(.invalidAnswer, "sealed events without a valid session key") }
        return (try resolve(host: host, port: port, gateway: base), session)
    }

    func deregister(deviceKey: String) async throws {
        let _: (SceneList, String) = try await call(.POST, scenePath + "/deregister", body: SceneList(scenes: [SceneJSON(key: sceneKey, devices: [DeviceJSON(key: deviceKey)])]))
    }

    /// The scene's current event endpoint; `failed` tells the gateway which one stopped answering.
    func endpoint(failed: SocketAddress?, timeout: TimeAmount) async throws -> SocketAddress {
        var url = scenePath + "/endpoint"
        if let failed, let text = Self.text(failed) {
            url += "?failed=" + (text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: ".:-_"))) ?? text)
        }
        let (answer, base): (EventEndpoint, String) = try await call(.GET, url, body: Optional<SceneList>.none, timeout: timeout)
        return try resolve(host: answer.host, port: answer.port, gateway: base)
    }

    /// `host:port`, IPv6 as `[host]:port`.
    static func text(_ address: SocketAddress) -> String? {
        guard let ip = address.ipAddress, let port = address.port else { return nil }
        if case .v6 = address { return "[\(ip)]:\(port)" }
        return "\(ip):\(port)"
    }

    /// An IP literal as is, a name resolved; an unspecified address (`0.0.0.0`, `::`) means the gateway's host.
    private func resolve(host: String, port: Int, gateway: String) throws -> SocketAddress {
        var host = host
        if host.isEmpty || host == "0.0.0.0" || host == "::" {
            host = URL(string: gateway)?.host ?? "127.0.0.1"
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard (1...65535).contains(port) else { throw AeselClientError(.invalidAnswer, "event port \(port)") }
        if let address = try? SocketAddress(ipAddress: host, port: port) { return address }
        return try SocketAddress.makeAddressResolvingHost(host, port: port)
    }

    /// Sends the call to each gateway in turn from the current one, and gives the answer and the gateway
    /// that sent it. Every gateway but the last gets at most 2 s, so a hung one does not hold it up long.
    private func call<Body: Encodable, Answer: Decodable>(
        _ method: HTTPMethod, _ path: String, body: Body?, timeout: TimeAmount = .seconds(10)
    ) async throws -> (Answer, String) {
        let encoded = try body.map { try JSONEncoder().encode($0) }
        let first = current.withLockedValue { $0 }
        var lastError: any Error = AeselClientError(.invalidAnswer, "no gateway URL")
        for attempt in 0..<bases.count {
            let index = (first + attempt) % bases.count
            let last = attempt == bases.count - 1
            do {
                let answer: Answer = try await call(method, bases[index] + path, body: encoded, timeout: last ? timeout : min(timeout, .seconds(2)))
                current.withLockedValue { $0 = index }
                return (answer, bases[index])
            } catch let error as AeselClientError where error.code == .gatewayRefused {
                guard let refusal = error.underlyingError as? GatewayRefusal, [502, 503, 504].contains(refusal.status) else { throw error }
                lastError = error
            } catch let error as AeselClientError {
                throw error
            } catch {
                // Not reached, timed out, or the connection dropped.
                lastError = error
            }
        }
        throw lastError
    }

    /// The SDK's HTTP clients, one per certificate authority file (nil: the system's roots), kept for the
    /// process's life as AsyncHTTPClient's shared one is. A refused connection fails the call at once:
    /// AsyncHTTPClient would otherwise retry until the call's deadline, and a gateway that is down must
    /// not cost a 2 s wait before the next.
    private static let clients = NIOLockedValueBox<[String?: HTTPClient]>([:])

    static func client(trusting certificateAuthorityPath: String?) throws -> HTTPClient {
        try clients.withLockedValue { clients in
            if let client = clients[certificateAuthorityPath] { return client }
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool.retryConnectionEstablishment = false
            var tls = TLSConfiguration.makeClientConfiguration()
            if let certificateAuthorityPath {
                do {
                    tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(certificateAuthorityPath))
                } catch {
                    throw AeselClientError(.invalidConfiguration, "cannot read certificate authorities from \(certificateAuthorityPath): \(error)")
                }
            }
            configuration.tlsConfiguration = tls
            let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
            clients[certificateAuthorityPath] = client
            return client
        }
    }

    private func call<Answer: Decodable>(_ method: HTTPMethod, _ url: String, body: Data?, timeout: TimeAmount) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let credential { request.headers.add(name: credential.header.name, value: credential.header.value) }
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await http.execute(request, timeout: timeout)
        let bytes = Data((try await response.body.collect(upTo: 1 << 20)).readableBytesView)
        guard response.status == .ok else {
            let envelope = try? JSONDecoder().decode(EnvelopeStatus.self, from: bytes)
            let message = envelope?.message ?? String(decoding: bytes.prefix(200), as: UTF8.self)
            throw AeselClientError.refused(status: Int(response.status.code), code: envelope?.code, message: message)
        }
        do {
            return try JSONDecoder().decode(Answer.self, from: bytes)
        } catch {
            throw AeselClientError(.invalidAnswer, "\(error)")
        }
    }
}

/// The error fields of any envelope, read leniently.
private struct EnvelopeStatus: Decodable {
    var code: Int?
    var message: String?

    enum CodingKeys: String, CodingKey {
        case code = "err_code"
        case message = "err_msg"
    }
}
