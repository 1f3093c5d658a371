public import Hummingbird
import AeselModel
import Foundation

/// JSON bodies in and out. One decoder and one encoder configuration for every route.
public enum JSONResponse {
    /// Request bodies above this size are refused with 413: the process's `http.body.limit`, which the
    /// router of ``makeHTTPRouter(limits:)`` sets for each request.
    @TaskLocal public static var maximumBodySize = HTTPConnectionLimits().maximumBodySize

    public static func make<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(value)
        return Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    /// Reads and decodes the request body. Unparseable JSON and wrong types are a 400 with err_code 110 and
    /// the parser's message; unknown fields are ignored.
    /// - Parameter defaults: top-level fields to assume when the body's object leaves them out.
    public static func decode<T: Decodable>(
        _ type: T.Type,
        from request: Request,
        list: EnvelopeError.List,
        messageType: Int,
        defaults: [String: any Sendable] = [:]
    ) async throws -> T {
        var request = request
        let body = try await request.collectBody(upTo: maximumBodySize)
        var data = Data(body.readableBytesView)
        // No store keeps NUL in text (PostgreSQL refuses it), so no request may carry one.
        if data.contains(0) || data.range(of: Data("\\u0000".utf8)) != nil {
            throw EnvelopeError(.badRequest, .translationError, "strings may not contain NUL (\\u0000)", list: list, messageType: messageType)
        }
        if !defaults.isEmpty, var object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] {
            for (key, value) in defaults where object[key] == nil { object[key] = value }
            data = (try? JSONSerialization.data(withJSONObject: object)) ?? data
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw EnvelopeError(.badRequest, .translationError, describe(error, in: data), list: list, messageType: messageType)
        }
    }

    /// Bounds of a query: records per filter, and filters per query.
    public static let maximumQueryRecords = 10_000
    public static let maximumQueryFilters = 100

    /// The longest key, name or other indexed string a record may have, in UTF-8 bytes.
    public static let maximumFieldLength = 1024

    /// Refuses fields that are too long to index.
    public static func checkLengths(_ fields: [String?], list: EnvelopeError.List, messageType: Int) throws {
        for case let field? in fields where field.utf8.count > maximumFieldLength {
            throw EnvelopeError(.badRequest, .translationError, "a key or name is longer than \(maximumFieldLength) bytes", list: list, messageType: messageType)
        }
    }

    static func describe(_ error: DecodingError, in data: Data) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            let text = codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return text.isEmpty ? "the body" : text
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "wrong type at \(path(context.codingPath)): expected \(type)"
        case .valueNotFound(let type, let context):
            return "null at \(path(context.codingPath)): expected \(type)"
        case .keyNotFound(let key, let context):
            return "missing field \(key.stringValue) in \(path(context.codingPath))"
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            // The decoder says only "not valid JSON"; the parser says where.
            do {
                _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
                // The JSON parses: what Foundation's decoder refused is a number it cannot hold.
                return "a number is out of range, or not an integer where one is expected"
            } catch {
                let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
                return "invalid JSON: \(detail ?? context.debugDescription)"
            }
        case .dataCorrupted(let context):
            return "invalid value at \(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "invalid JSON: \(error)"
        }
    }
}

extension Parameters {
    /// A path parameter, percent-decoded: the router hands them over as sent, and keys are stored decoded.
    public func decoded(_ name: String) throws -> String {
        let raw = try require(name)
        return raw.removingPercentEncoding ?? raw
    }

    /// A path parameter, percent-decoded, or nil when the route has none of that name.
    public func decodedIfPresent(_ name: String) -> String? {
        get(name).map { $0.removingPercentEncoding ?? $0 }
    }
}
