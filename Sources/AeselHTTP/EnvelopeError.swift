public import AeselModel
public import Hummingbird
import AeselWire
import Foundation
import Logging
import NIOHTTP1

/// An HTTP error answered in the original's list envelope: `{"msg_type":…,"err_code":…,"err_msg":…}`.
public struct EnvelopeError: HTTPResponseError, CustomStringConvertible {
    /// Which list the envelope carries: `scenes` for CrazyIvan's routes, `objects` for CLyman's.
    public enum List: Sendable {
        case scenes, objects, properties

        /// The list of a route: `/v1/object…` and `/v1/scene/{s}/object…` answer with objects, and so on.
        public init(path: String) {
            let segments = path.split(separator: "/")
            let resource = segments.count > 3 && segments[1] == "scene" ? segments[3] : segments.count > 1 ? segments[1] : ""
            self = resource == "object" ? .objects : resource == "property" ? .properties : .scenes
        }
    }

    public var status: HTTPResponse.Status
    public var code: ErrorCode
    public var message: String
    public var list: List
    public var messageType: Int
    /// Fields the answer carries besides the body's, e.g. a 401's `WWW-Authenticate`.
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ code: ErrorCode, _ message: String, list: List = .scenes, messageType: Int = 0, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.list = list
        self.messageType = messageType
        self.headers = headers
    }

    public static func notFound(_ message: String, list: List, messageType: Int) -> EnvelopeError {
        EnvelopeError(.notFound, .notFound, message, list: list, messageType: messageType)
    }

    public var description: String { "\(status.code) \(code.rawValue) \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response: Response
        switch list {
        case .scenes:
            let body = SceneList(messageType: messageType, errorCode: code, errorMessage: message, numRecords: 0, startRecord: 0, scenes: [])
            response = try JSONResponse.make(body, status: status)
        case .objects:
            let body = ObjectList(messageType: messageType, errorCode: code, errorMessage: message, numRecords: 0, items: [])
            response = try JSONResponse.make(body, status: status)
        case .properties:
            let body = PropertyList(messageType: messageType, errorCode: code, errorMessage: message, numRecords: 0, items: [])
            response = try JSONResponse.make(body, status: status)
        }
        response.headers.append(contentsOf: headers)
        return response
    }
}

/// Turns every error a route throws into an envelope, so no client ever sees an empty or HTML body:
/// unknown routes, oversized bodies and unexpected failures included.
public struct EnvelopeErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        let list = EnvelopeError.List(path: path)
        do {
            return try await next(request, context)
        } catch let error as EnvelopeError {
            throw error
        } catch let error as any HTTPResponseError {
            switch error.status {
            case .notFound: throw EnvelopeError(.notFound, .notFound, "no route for \(request.method) \(path)", list: list)
            case .contentTooLarge: throw EnvelopeError(.contentTooLarge, .translationError, "the body is larger than \(JSONResponse.maximumBodySize) bytes", list: list)
            default: throw EnvelopeError(error.status, .translationError, (error as? HTTPError)?.body ?? error.status.reasonPhrase, list: list)
            }
        } catch let error as HTTPParserError {
            // The body ended before its Content-Length, or its chunked encoding is broken.
            throw EnvelopeError(.badRequest, .translationError, "the request body is cut short or malformed: \(error)", list: list)
        } catch {
            // The description may hold internals (SQL, paths): it is logged, never answered.
            context.logger.error("request failed", metadata: ["aesel.path": "\(path)", "error": "\(error)"])
            throw EnvelopeError(.internalServerError, .processingError, "internal error", list: list)
        }
    }
}
