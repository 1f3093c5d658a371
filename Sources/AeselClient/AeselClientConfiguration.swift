public import AeselModel

/// What an ``AeselClient`` needs to join a scene.
public struct AeselClientConfiguration: Sendable {
    /// Base URL of the HTTP gateway, e.g. `http://127.0.0.1:8080`.
    public var gateway: String
    /// The scene to join.
    public var sceneKey: String
    /// This device's key in the scene.
    public var deviceKey: String
    /// The format the client sends in and asks to receive in.
    public var format: EventFormat
    /// The local address to receive events on: an IP literal the server can send to.
    public var bindHost: String
    /// How long the client tolerates silence while it is sending before it asks the gateway for another
    /// event endpoint.
    public var silenceTimeout: Duration

    public init(
        gateway: String,
        sceneKey: String,
        deviceKey: String,
        format: EventFormat = .binary,
        bindHost: String = "127.0.0.1",
        silenceTimeout: Duration = .milliseconds(300)
    ) {
        self.gateway = gateway
        self.sceneKey = sceneKey
        self.deviceKey = deviceKey
        self.format = format
        self.bindHost = bindHost
        self.silenceTimeout = silenceTimeout
    }
}

/// Why the client could not join or talk to the gateway.
public enum AeselClientError: Error, Sendable, CustomStringConvertible {
    /// The gateway refused a request: the HTTP status, and the envelope's `err_code` and `err_msg` when
    /// it sent one.
    case gateway(status: Int, code: Int?, message: String)
    /// A successful answer that lacks what the client needs, e.g. the event destination.
    case invalidAnswer(String)
    /// The client was closed.
    case closed

    public var description: String {
        switch self {
        case .gateway(let status, let code, let message):
            "gateway answered HTTP \(status)" + (code.map { " (err_code \($0))" } ?? "") + (message.isEmpty ? "" : ": \(message)")
        case .invalidAnswer(let reason): "unexpected gateway answer: \(reason)"
        case .closed: "the client is closed"
        }
    }
}
