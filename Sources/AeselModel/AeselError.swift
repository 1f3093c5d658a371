/// A module's error codes: a closed set of bounded names, fit for switching on and for metric labels.
public protocol AeselErrorCode: Sendable, Hashable, CustomStringConvertible, RawRepresentable where RawValue == String {}

extension AeselErrorCode {
    public var description: String { rawValue }
}

/// The one error shape of every module: a code to act on and count, a message for people, the error it
/// came from, and where it was thrown. Each module names its own: `StoreError`, `StreamError`,
/// `ClusterError`, `AeselClientError`, `ConfigurationError`. Two errors are equal when their codes are.
public struct AeselError<ErrorCode: AeselErrorCode>: Error, CustomStringConvertible, Equatable {
    public typealias Code = ErrorCode

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

    /// A bounded label for metric dimensions: the code alone.
    public var shortDescription: String { code.description }

    public var description: String {
        guard let underlyingError else { return "\(code): \(message)" }
        return "\(code): \(message) (\(underlyingError))"
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.code == rhs.code
    }
}
