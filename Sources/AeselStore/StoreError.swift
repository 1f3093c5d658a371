/// What a store call failed with. Every back end translates its native errors into one of these codes
/// and keeps the original as `underlyingError`; errors thrown by an `update…` closure pass through as
/// they are. Two errors are equal when their codes are.
public struct StoreError: Error, CustomStringConvertible, Equatable {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case duplicate, notFound = "not_found", unavailable, busy, corrupt, invalid, unexpected
        }

        private let base: Base

        private init(_ base: Base) {
            self.base = base
        }

        /// A row with this key exists already.
        public static let duplicate = Code(.duplicate)
        /// A row the call needs does not exist: the scene of a registration or of a link.
        public static let notFound = Code(.notFound)
        /// The store cannot answer now (its server is unreachable, the connection was lost, a disk I/O
        /// error, the database locked past the timeout): the same call may succeed later.
        public static let unavailable = Code(.unavailable)
        /// The store could not be opened in time: something else holds it (the message names who).
        public static let busy = Code(.busy)
        /// A stored column does not decode (the message names its table, key and column).
        public static let corrupt = Code(.corrupt)
        /// The store refuses a value of this call (a constraint or a type it breaks): retrying it will not help.
        public static let invalid = Code(.invalid)
        /// Anything else the back end reported.
        public static let unexpected = Code(.unexpected)

        public var description: String { base.rawValue }
    }

    public var code: Code
    public var message: String
    public var underlyingError: (any Error)?
    public var file: String
    public var line: Int

    public init(_ code: Code, _ message: String, underlyingError: (any Error)? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.underlyingError = underlyingError
        self.file = file
        self.line = line
    }

    /// The store at `path` could not be opened in time; `holders` says who holds it.
    public static func busy(path: String, holders: String, file: String = #fileID, line: Int = #line) -> StoreError {
        StoreError(.busy, "the store \(path) is busy: \(holders)", file: file, line: line)
    }

    /// A bounded label for metric dimensions: the code alone.
    public var shortDescription: String { code.description }

    public var description: String {
        guard let underlyingError else { return "\(code): \(message)" }
        return "\(code): \(message) (\(underlyingError))"
    }

    public static func == (lhs: StoreError, rhs: StoreError) -> Bool {
        lhs.code == rhs.code
    }
}
