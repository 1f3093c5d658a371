public import AeselModel

/// What a change stream failed with, for every back end: each translates its library's errors (libzmq,
/// librdkafka) into a code here and keeps the library's words in the message.
public typealias StreamError = AeselError<StreamErrorCode>

public enum StreamErrorCode: String, AeselErrorCode {
    /// `noHeartbeat`: no heartbeat from CLyman arrived within the timeout (the publisher is not there yet).
    /// `backend`: the back end's library (libzmq, librdkafka) refused a setting, a bind or a connect.
    case noHeartbeat = "no_heartbeat", backend
}
