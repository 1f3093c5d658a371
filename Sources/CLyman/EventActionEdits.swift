import AeselModel
public import AeselStore
import AeselStream
import AeselWire
import CoreMetrics
import Foundation
public import Logging
import NIOConcurrencyHelpers
import NIOCore
public import ServiceLifecycle

/// Keyframe and action updates sent over UDP (`msg_type` 16, 20, 24 and 28, reference 2.1).
///
/// Each is a read-modify-write of a record's actions, not a value that a later one replaces, so unlike
/// transforms they are applied in the store first, one at a time in arrival order and off the event loop,
/// and then sent to the scene's devices with the record as it now is: `msg_type` 1 for an object and 9 for
/// a property, as the original's UDP path labelled them, with the record's current transform or values
/// (the original sent an identity transform, which reset the object on every device).
public final class EventActionEdits: Service {
    /// Updates waiting for the store; more are dropped as `action_backlog`.
    static let maximumWaiting = 1024

    private let store: any AeselStore
    private let writeBehind: TransformWriteBehind
    private let metrics: IngestMetrics
    private let logger: Logger
    private let stream = NIOLockedValueBox<(any ChangeStream)?>(nil)
    private let waiting: AsyncStream<ObjectEvent>
    private let continuation: AsyncStream<ObjectEvent>.Continuation

    public init(store: any AeselStore, writeBehind: TransformWriteBehind, metrics: IngestMetrics, logger: Logger) {
        self.store = store
        self.writeBehind = writeBehind
        self.metrics = metrics
        self.logger = logger
        (waiting, continuation) = AsyncStream.makeStream(of: ObjectEvent.self, bufferingPolicy: .bufferingOldest(Self.maximumWaiting))
    }

    /// Where the applied updates go; set once the stream exists, before the first datagram is read.
    func attach(_ stream: any ChangeStream) {
        self.stream.withLockedValue { $0 = stream }
    }

    /// Called on the event loop, after the update passed the ingest checks.
    func submit(_ event: ObjectEvent) {
        switch continuation.yield(event) {
        case .enqueued: break
        case .dropped, .terminated: metrics.actionBacklog.increment()
        @unknown default: metrics.actionBacklog.increment()
        }
    }

    /// Applies updates until graceful shutdown, then those still waiting.
    public func run() async throws {
        await withGracefulShutdownHandler {
            for await event in waiting { await apply(event) }
        } onGracefulShutdown: { [continuation] in
            continuation.finish()
        }
    }

    func apply(_ event: ObjectEvent) async {
        do {
            let json: Data?
            switch event.actions {
            case .objectKeyframes(let actions), .objectActions(let actions):
                let keyframes = if case .objectKeyframes = event.actions { true } else { false }
                json = try await store.updateObject(key: event.objectKey) { object in
                    guard object.sceneKey == event.sceneKey else { throw OtherScene() }
                    try Self.merge(actions, into: &object.actions, keyframes: keyframes)
                }.map { try JSONEncoder().encode(ObjectJSON(writeBehind.overlaid($0), messageType: .update)) }
            case .propertyKeyframes(let actions), .propertyActions(let actions):
                let keyframes = if case .propertyKeyframes = event.actions { true } else { false }
                json = try await store.updateProperty(key: event.objectKey) { property in
                    guard property.sceneKey == event.sceneKey else { throw OtherScene() }
                    try Self.merge(actions, into: &property.actions, keyframes: keyframes)
                }.map { try JSONEncoder().encode(PropertyJSON(writeBehind.overlaid($0), messageType: .update)) }
            case nil:
                return
            }
            guard let json else {
                metrics.actionRefused.increment()
                return
            }
            let messageType = event.kind == .objectUpdate ? ObjectMessageType.update.rawValue : ObjectMessageType.update.propertyCode
            stream.withLockedValue { $0 }?.publish(.transaction(TransactionEvent(sceneKey: event.sceneKey, messageType: messageType, json: ByteBuffer(bytes: json))))
        } catch is RecordRefusal {
            metrics.actionRefused.increment()
        } catch is OtherScene {
            metrics.actionRefused.increment()
        } catch {
            metrics.persistFailures.increment()
            logger.warning("a UDP keyframe or action update was not stored", metadata: ["aesel.key": "\(event.objectKey)", "error": "\(error)"])
        }
    }

    /// The record moved to another scene after the ingest checked it.
    private struct OtherScene: Error {}

    /// Keyframe updates add or replace each keyframe; action updates set each action's non-empty
    /// description and owner. A named action that does not exist is created, as the original's `$set` did.
    static func merge<Keyframe>(_ given: [Action<Keyframe>], into actions: inout [Action<Keyframe>], keyframes: Bool) throws {
        for update in given {
            let index = actions.firstIndex { $0.name == update.name } ?? {
                actions.append(Action(name: update.name))
                return actions.count - 1
            }()
            if keyframes {
                for keyframe in update.keyframes { actions[index].upsert(keyframe) }
            } else {
                if !update.description.isEmpty { actions[index].description = update.description }
                if !update.owner.isEmpty { actions[index].owner = update.owner }
            }
        }
        try ActionEdit<Keyframe>.checkLimits(actions)
    }
}
