import AeselHTTP
import AeselModel
import AeselWire
import Hummingbird

/// Why a transaction on an object or property was refused after reading it.
enum RecordRefusal: Error {
    case locked(by: String)
    case notOwner(owner: String)
    case noAction(String)
    case noKeyframe(action: String, frame: Int)
    case tooLarge(String)

    func envelope(list: EnvelopeError.List, messageType: Int) -> EnvelopeError {
        switch self {
        case .locked(let owner):
            EnvelopeError(.conflict, .lockExists, "locked by device \(owner)", list: list, messageType: messageType)
        case .notOwner(let owner):
            EnvelopeError(.conflict, .lockExists, owner.isEmpty ? "not locked" : "locked by device \(owner), not by this device", list: list, messageType: messageType)
        case .noAction(let name):
            EnvelopeError.notFound("no action \(name)", list: list, messageType: messageType)
        case .noKeyframe(let action, let frame):
            EnvelopeError.notFound("no keyframe \(frame) in action \(action)", list: list, messageType: messageType)
        case .tooLarge(let message):
            EnvelopeError(.badRequest, .insufficientData, message, list: list, messageType: messageType)
        }
    }
}

/// The action and keyframe operations objects and properties share (reference 1.4), as edits of a
/// record's action list. Each returns the `msg_type` of its object event.
enum ActionEdit<Keyframe: Sendable & Hashable & Codable & FrameNumbered>: Sendable {
    case addAction(Action<Keyframe>)
    case updateAction(name: String, description: String?, owner: String?)
    case deleteAction(name: String)
    case addKeyframe(action: String, Keyframe)
    case updateKeyframe(action: String, frame: Int, Keyframe)
    case deleteKeyframe(action: String, frame: Int)

    var messageType: ObjectMessageType {
        switch self {
        case .addAction: .actionCreate
        case .updateAction: .actionUpdate
        case .deleteAction: .actionDelete
        case .addKeyframe: .frameCreate
        case .updateKeyframe: .frameUpdate
        case .deleteKeyframe: .frameDelete
        }
    }

    /// At most this many actions per object or property.
    static var maximumActions: Int { 100 }

    func apply(to actions: inout [Action<Keyframe>]) throws {
        try edit(&actions)
        try Self.checkLimits(actions)
    }

    static func checkLimits(_ actions: [Action<Keyframe>]) throws {
        guard actions.count <= maximumActions else { throw RecordRefusal.tooLarge("at most \(maximumActions) actions") }
        guard actions.allSatisfy({ $0.keyframes.count <= Action<Keyframe>.maximumKeyframes }) else {
            throw RecordRefusal.tooLarge("at most \(Action<Keyframe>.maximumKeyframes) keyframes per action")
        }
    }

    private func edit(_ actions: inout [Action<Keyframe>]) throws {
        func index(_ name: String) throws -> Int {
            guard let index = actions.firstIndex(where: { $0.name == name }) else { throw RecordRefusal.noAction(name) }
            return index
        }
        switch self {
        case .addAction(let action):
            actions.removeAll { $0.name == action.name }
            actions.append(action)
        case .updateAction(let name, let description, let owner):
            let at = try index(name)
            if let description { actions[at].description = description }
            if let owner { actions[at].owner = owner }
        case .deleteAction(let name):
            actions.remove(at: try index(name))
        case .addKeyframe(let name, let keyframe):
            actions[try index(name)].upsert(keyframe)
        case .updateKeyframe(let name, let frame, var keyframe):
            let at = try index(name)
            guard actions[at].keyframes.contains(where: { $0.frame == frame }) else { throw RecordRefusal.noKeyframe(action: name, frame: frame) }
            keyframe = keyframe.withFrame(frame)
            actions[at].upsert(keyframe)
        case .deleteKeyframe(let name, let frame):
            let at = try index(name)
            guard actions[at].keyframes.contains(where: { $0.frame == frame }) else { throw RecordRefusal.noKeyframe(action: name, frame: frame) }
            actions[at].keyframes.removeAll { $0.frame == frame }
        }
    }
}

extension FrameNumbered {
    func withFrame(_ frame: Int) -> Self {
        if let keyframe = self as? ObjectKeyframe {
            var copy = keyframe
            copy.frame = frame
            return copy as! Self
        }
        if let keyframe = self as? PropertyKeyframe {
            var copy = keyframe
            copy.frame = frame
            return copy as! Self
        }
        return self
    }
}

/// No store keeps NUL (PostgreSQL refuses it), so no path or query parameter may carry one (`%00`), as no
/// body may: 400 with err_code 110, before the route reads the store.
struct NULParameterRefusal<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path.contains("%00") || request.uri.query?.contains("%00") == true {
            throw EnvelopeError(.badRequest, .translationError, "strings may not contain NUL (\\u0000)", list: .init(path: request.uri.path))
        }
        return try await next(request, context)
    }
}

/// The actions of a create or update body, one per name (the last given wins, as in the original, which
/// kept actions in a map by name), in the order their names first appear.
func uniqueActions<Keyframe: Sendable & Hashable & Codable & FrameNumbered>(_ given: [Action<Keyframe>]) -> [Action<Keyframe>] {
    var actions: [Action<Keyframe>] = []
    for action in given {
        if let at = actions.firstIndex(where: { $0.name == action.name }) {
            actions[at] = action
        } else {
            actions.append(action)
        }
    }
    return actions
}

/// Refuses the actions of a create or update body that the action routes would refuse: more than
/// `maximumActions`, an empty name (it could never be addressed) or one too long to index.
func checkActions(_ names: [String], maximum: Int, list: EnvelopeError.List, messageType: Int) throws {
    if names.count > maximum {
        throw EnvelopeError(.badRequest, .insufficientData, "at most \(maximum) actions", list: list, messageType: messageType)
    }
    if names.contains(where: \.isEmpty) {
        throw EnvelopeError(.badRequest, .insufficientData, "an action needs a name", list: list, messageType: messageType)
    }
    try JSONResponse.checkLengths(names, list: list, messageType: messageType)
}

/// Registers the action and keyframe routes under `{segment}/{key}` and turns requests into edits.
struct ActionRoutes<Keyframe: Sendable & Hashable & Codable & FrameNumbered> {
    let segment: String
    let list: EnvelopeError.List
    let codeOffset: Int
    /// Applies the edit to the record `key` (found by key, whatever scene the path names) and answers.
    let edit: @Sendable (_ key: String, ActionEdit<Keyframe>) async throws -> Response

    func add<Context: RequestContext>(to group: RouterGroup<Context>) {
        let base = "\(segment)/{key}/action"
        group.post(RouterPath(base)) { request, context in
            let action = try await JSONResponse.decode(Action<Keyframe>.self, from: request, list: list, messageType: ObjectMessageType.actionCreate.rawValue + codeOffset)
            try checkActions([action.name], maximum: 1, list: list, messageType: ObjectMessageType.actionCreate.rawValue + codeOffset)
            return try await edit(context.parameters.decoded("key"), .addAction(action))
        }
        group.post(RouterPath("\(base)/{action}")) { request, context in
            let body = try await JSONResponse.decode(ActionUpdateJSON.self, from: request, list: list, messageType: ObjectMessageType.actionUpdate.rawValue + codeOffset)
            return try await edit(
                context.parameters.decoded("key"),
                .updateAction(name: context.parameters.decoded("action"), description: body.description, owner: body.owner)
            )
        }
        group.delete(RouterPath("\(base)/{action}")) { _, context in
            try await edit(context.parameters.decoded("key"), .deleteAction(name: context.parameters.decoded("action")))
        }
        group.post(RouterPath("\(base)/{action}/keyframe")) { request, context in
            let keyframe = try await JSONResponse.decode(Keyframe.self, from: request, list: list, messageType: ObjectMessageType.frameCreate.rawValue + codeOffset)
            return try await edit(context.parameters.decoded("key"), .addKeyframe(action: context.parameters.decoded("action"), keyframe))
        }
        group.post(RouterPath("\(base)/{action}/keyframe/{frame}")) { request, context in
            let frame = try Self.frame(context, list: list)
            // The path gives the frame; the body may leave it out.
            let keyframe = try await JSONResponse.decode(
                Keyframe.self, from: request, list: list, messageType: ObjectMessageType.frameUpdate.rawValue + codeOffset, defaults: ["frame": frame]
            )
            return try await edit(
                context.parameters.decoded("key"),
                .updateKeyframe(action: context.parameters.decoded("action"), frame: frame, keyframe)
            )
        }
        group.delete(RouterPath("\(base)/{action}/keyframe/{frame}")) { _, context in
            try await edit(
                context.parameters.decoded("key"),
                .deleteKeyframe(action: context.parameters.decoded("action"), frame: try Self.frame(context, list: list))
            )
        }
    }

    private static func frame(_ context: some RequestContext, list: EnvelopeError.List) throws -> Int {
        guard let frame = context.parameters.get("frame", as: Int.self) else {
            throw EnvelopeError(.badRequest, .translationError, "the frame in the path must be an integer", list: list)
        }
        return frame
    }
}

/// `{"description": …, "owner": …}` for an action update.
struct ActionUpdateJSON: Decodable {
    var description: String?
    var owner: String?
}

