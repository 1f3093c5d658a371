public import AeselModel

/// What a change stream failed with, for every back end: each translates its library's errors (libzmq,
/// librdkafka) into a code here and keeps the library's words in the message.
public typealias StreamError = AeselError<StreamErrorCode>

public struct StreamErrorCode: AeselErrorCode {
    public let description: String

    private init(_ description: String) {
        self.description = description
    }

    /// No heartbeat from CLyman arrived within the timeout: the publisher is not there (yet).
    public static let noHeartbeat = Self("no_heartbeat")
    /// The back end's library refused a call (libzmq, librdkafka): a setting, a bind, a connect.
    public static let backend = Self("backend")
}
