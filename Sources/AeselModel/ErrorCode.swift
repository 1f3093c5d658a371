/// The original's `err_code` values (reference section 0), shared by every HTTP response envelope.
public enum ErrorCode: Int, Sendable, Codable {
    case noError = 100
    case error = 101
    case notFound = 102
    case translationError = 110
    case processingError = 120
    case badMessageType = 121
    case insufficientData = 122
    case lockExists = 123
}
