public import AeselModel

/// What proves the client may call the gateway: a bearer token (`aesel token`) or an API key
/// (`aesel api-key`), granted the client's scene.
public enum AeselCredential: Sendable, CustomStringConvertible {
    case bearerToken(String)
    case apiKey(String)

    /// The header the credential travels in.
    public var header: (name: String, value: String) {
        switch self {
        case .bearerToken(let token): ("Authorization", "Bearer " + token)
        case .apiKey(let key): ("X-API-Key", key)
        }
    }

    /// Never the secret itself.
    public var description: String {
        switch self {
        case .bearerToken: "AeselCredential.bearerToken(redacted)"
        case .apiKey: "AeselCredential.apiKey(redacted)"
        }
    }
}

/// What an ``AeselClient`` needs to join a scene.
public struct AeselClientConfiguration: Sendable {
    /// Base URLs of the HTTP gateway, e.g. `["http://127.0.0.1:8080"]`: one per Adrestia instance (or
    /// the one `aesel serve`). The client moves to the next one when one does not answer.
    public var gateways: [String]
    /// The scene to join.
    public var sceneKey: String
    /// This device's key in the scene.
    public var deviceKey: String
    /// The format the client sends in and asks to receive in.
    public var format: EventFormat
    /// The local address to receive events on: an IP literal the server can send to.
    public var bindHost: String
    /// How long the pair may stay silent before the client asks the gateway for another event endpoint
    /// (`?failed=`): no event, no notice and no answer to the keepalives sent meanwhile. The client asks
    /// only once a keepalive has had ``keepaliveInterval`` to be answered, so a timeout of at least twice
    /// the interval is kept exactly.
    public var silenceTimeout: Duration
    /// How long the client waits after it last heard from the pair before it sends a keepalive, and
    /// between keepalives while the pair stays silent. Well below ``silenceTimeout``, so that one lost
    /// datagram does not make a failover; every keepalive also keeps a NAT's mapping to the pair open.
    public var keepaliveInterval: Duration
    /// A PEM file of the certificate authorities that `https://` gateways' certificates must chain to;
    /// nil for the system's roots.
    public var certificateAuthorityPath: String?
    /// Sent on every gateway call; nil for a gateway that asks for none (`aesel serve` on loopback).
    public var credential: AeselCredential?

    public init(
        gateways: [String],
        sceneKey: String,
        deviceKey: String,
        format: EventFormat = .binary,
        bindHost: String = "127.0.0.1",
        silenceTimeout: Duration = .milliseconds(300),
        keepaliveInterval: Duration = .milliseconds(100),
        certificateAuthorityPath: String? = nil,
        credential: AeselCredential? = nil
    ) {
        self.credential = credential
        self.certificateAuthorityPath = certificateAuthorityPath
        self.gateways = gateways
        self.sceneKey = sceneKey
        self.deviceKey = deviceKey
        self.format = format
        self.bindHost = bindHost
        self.silenceTimeout = silenceTimeout
        self.keepaliveInterval = keepaliveInterval
    }
}

/// Why the client could not join or talk to the gateway.
public typealias AeselClientError = AeselError<AeselClientErrorCode>

public enum AeselClientErrorCode: String, AeselErrorCode {
    /// `gatewayRefused`: the gateway refused a request; the underlying error is its ``GatewayRefusal``.
    /// `invalidAnswer`: a successful answer lacks what the client needs, e.g. the event destination.
    /// `closed`: the client was closed.
    /// `invalidConfiguration`: the configuration cannot be used, e.g. its certificate authority file.
    case gatewayRefused = "gateway_refused", invalidAnswer = "invalid_answer", closed, invalidConfiguration = "invalid_configuration"
}

/// The gateway's refusal: the HTTP status, and the envelope's `err_code` and `err_msg` when it sent one.
public struct GatewayRefusal: Error, Sendable, CustomStringConvertible {
    public var status: Int
    public var code: Int?
    public var message: String

    public var description: String {
        "gateway answered HTTP \(status)" + (code.map { " (err_code \($0))" } ?? "") + (message.isEmpty ? "" : ": \(message)")
    }
}

extension AeselError where ErrorCode == AeselClientErrorCode {
    static func refused(status: Int, code: Int?, message: String, file: String = #fileID, line: Int = #line) -> AeselClientError {
        let refusal = GatewayRefusal(status: status, code: code, message: message)
        return AeselClientError(.gatewayRefused, refusal.description, underlyingError: refusal, file: file, line: line)
    }
}
