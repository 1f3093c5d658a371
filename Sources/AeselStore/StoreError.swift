public import AeselModel

/// What a store call failed with. Every back end translates its native errors into one of these codes
/// and keeps the original as `underlyingError`; errors thrown by an `update…` closure pass through as
/// they are.
public typealias StoreError = AeselError<StoreErrorCode>

public enum StoreErrorCode: String, AeselErrorCode {
    /// `duplicate`: a row with this key exists already. `notFound`: a row the call needs does not exist
    /// (the scene of a registration or of a link).
    case duplicate, notFound = "not_found"
    /// The store cannot answer now (its server is unreachable, the connection was lost, a disk I/O error,
    /// the database locked past the timeout): the same call may succeed later.
    case unavailable
    /// The store could not be opened in time: something else holds it (the message names who).
    case busy
    /// A stored column does not decode (the message names its table, key and column).
    case corrupt
    /// `invalid`: the store refuses a value of this call (a constraint or a type it breaks, a URL it cannot
    /// use), and retrying will not help. `unexpected`: anything else the back end reported.
    case invalid, unexpected
}

extension AeselError where ErrorCode == StoreErrorCode {
    /// The store at `path` could not be opened in time; `holders` says who holds it.
    public static func busy(path: String, holders: String, file: String = #fileID, line: Int = #line) -> StoreError {
        StoreError(.busy, "the store \(path) is busy: \(holders)", file: file, line: line)
    }
}
