import AeselModel
public import AeselStore
import CoreMetrics
public import Logging
public import ServiceLifecycle
import NIOConcurrencyHelpers

/// Write-behind persistence of event transforms: the hot path records the newest transform per object
/// (latest wins), and a background loop writes what changed in one transaction every `interval`.
///
/// Reads see a transform as soon as it is recorded (``newest(objectKey:)``), so the interval trades only
/// how much a crash may lose against store load, never freshness. A slow or failing store never slows
/// forwarding: a batch the store is unavailable for is merged back under newer updates and retried. Graceful
/// shutdown writes everything that is pending.
public final class TransformWriteBehind: Service {
    struct State {
        /// Recorded since the last flush started.
        var pending: [String: TransformUpdate] = [:]
        /// Being written by the current flush.
        var writing: [String: TransformUpdate] = [:]
        var pendingValues: [String: PropertyValuesUpdate] = [:]
        var writingValues: [String: PropertyValuesUpdate] = [:]
    }

    private let store: any AeselStore
    private let interval: Duration
    private let logger: Logger
    private let metrics: IngestMetrics
    private let state = NIOLockedValueBox(State())

    public init(store: any AeselStore, interval: Duration, metrics: IngestMetrics, logger: Logger) {
        self.store = store
        self.interval = interval
        self.metrics = metrics
        self.logger = logger
    }

    /// Called on the hot path, after the event has been forwarded.
    func record(_ event: ObjectEvent) {
        switch event.kind {
        case .objectUpdate:
            let update = TransformUpdate(objectKey: event.objectKey, sceneKey: event.sceneKey, transform: event.transform, sequence: event.sequence)
            state.withLockedValue { $0.pending[event.objectKey] = update }
        case .propertyUpdate:
            let update = PropertyValuesUpdate(propertyKey: event.objectKey, sceneKey: event.sceneKey, values: event.values, sequence: event.sequence)
            state.withLockedValue { $0.pendingValues[event.objectKey] = update }
        }
    }

    /// The newest transform recorded for `objectKey` that the store may not hold yet.
    public func newest(objectKey: String) -> TransformUpdate? {
        state.withLockedValue { $0.pending[objectKey] ?? $0.writing[objectKey] }
    }

    /// The newest values recorded for `propertyKey` that the store may not hold yet.
    public func newestValues(propertyKey: String) -> PropertyValuesUpdate? {
        state.withLockedValue { $0.pendingValues[propertyKey] ?? $0.writingValues[propertyKey] }
    }

    /// `object` with the newest transform an event gave it: what its devices last received.
    public func overlaid(_ object: SceneObject) -> SceneObject {
        guard let newest = newest(objectKey: object.key) else { return object }
        var object = object
        object.transform = newest.transform
        object.sequence = newest.sequence
        return object
    }

    /// `property` with the newest values an event gave it.
    public func overlaid(_ property: SceneProperty) -> SceneProperty {
        guard let newest = newestValues(propertyKey: property.key) else { return property }
        var property = property
        property.values = newest.values
        return property
    }

    /// A transaction has just set this transform: write it again after any event transform already on its
    /// way to the store, so that the acknowledged value is the one that stays.
    public func supersede(_ object: SceneObject) {
        state.withLockedValue { $0.pending[object.key] = TransformUpdate(objectKey: object.key, sceneKey: object.sceneKey, transform: object.transform, sequence: 0) }
    }

    /// The same for a property's values.
    public func supersede(_ property: SceneProperty) {
        state.withLockedValue { $0.pendingValues[property.key] = PropertyValuesUpdate(propertyKey: property.key, sceneKey: property.sceneKey, values: property.values, sequence: 0) }
    }

    /// Forgets what events recorded for a key, when its record was deleted.
    public func discard(key: String) {
        state.withLockedValue { state in
            state.pending[key] = nil
            state.writing[key] = nil
            state.pendingValues[key] = nil
            state.writingValues[key] = nil
        }
    }

    public func run() async throws {
        // The wait ends at graceful shutdown, so the last flush follows at once; a write is never cut short
        // (it would only be retried below).
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { [interval] in try await Task.sleep(for: interval) }
            await flush()
        }
        // The last flush runs in its own task so that even a cancelled service writes what it holds.
        await Task { await self.flush() }.value
    }

    /// Writes everything pending now. An unavailable store keeps the whole batch for the next flush; any
    /// other failure is an update the store refuses, so the batch is written one by one and only the
    /// refused ones are dropped.
    public func flush() async {
        let (transforms, values) = state.withLockedValue { state in
            state.writing = state.pending
            state.pending.removeAll(keepingCapacity: true)
            state.writingValues = state.pendingValues
            state.pendingValues.removeAll(keepingCapacity: true)
            return (state.writing, state.writingValues)
        }
        guard !transforms.isEmpty || !values.isEmpty else { return }
        let batch = transforms.count + values.count
        do {
            try await store.applyTransforms(Array(transforms.values))
            try await store.applyPropertyValues(Array(values.values))
            metrics.persisted.increment(by: batch)
            finishWriting()
        } catch let error as StoreError where error.code == .unavailable {
            metrics.storeUnavailable.increment()
            logger.info("store unavailable; the write-behind batch waits for the next flush", metadata: ["error": "\(error)", "aesel.batch": "\(batch)"])
            finishWriting(requeueing: transforms, values)
        } catch {
            metrics.persistFailures.increment()
            logger.warning("write-behind batch failed; writing it one by one", metadata: ["error": "\(error)", "aesel.batch": "\(batch)"])
            await writeOneByOne(transforms, values)
        }
    }

    private enum Outcome {
        case written, unavailable, refused
    }

    private static func attempt(_ write: () async throws -> Void) async -> Outcome {
        do {
            try await write()
            return .written
        } catch let error as StoreError where error.code == .unavailable {
            return .unavailable
        } catch {
            return .refused
        }
    }

    /// What writing updates one at a time came to; once the store is unavailable, nothing more is tried.
    private struct OneByOne {
        var available = true
        var written = 0
        var refused = 0

        /// Writes each update with `apply`; returns those that must wait for the next flush.
        mutating func write<Update: Sendable>(_ updates: [String: Update], _ apply: (Update) async throws -> Void) async -> [String: Update] {
            var waiting: [String: Update] = [:]
            for (key, update) in updates {
                switch available ? await TransformWriteBehind.attempt({ try await apply(update) }) : .unavailable {
                case .written: written += 1
                case .refused: refused += 1
                case .unavailable:
                    available = false
                    waiting[key] = update
                }
            }
            return waiting
        }
    }

    /// Drops the updates the store refuses; once it is unavailable, the rest wait for the next flush.
    private func writeOneByOne(_ transforms: [String: TransformUpdate], _ values: [String: PropertyValuesUpdate]) async {
        var tally = OneByOne()
        let waitingTransforms = await tally.write(transforms) { try await self.store.applyTransforms([$0]) }
        let waitingValues = await tally.write(values) { try await self.store.applyPropertyValues([$0]) }
        let (written, refused, available) = (tally.written, tally.refused, tally.available)
        finishWriting(requeueing: waitingTransforms, waitingValues)
        metrics.persisted.increment(by: written)
        if !available { metrics.storeUnavailable.increment() }
        if refused > 0 {
            metrics.persistFailures.increment(by: refused)
            logger.error("write-behind dropped updates the store refuses", metadata: ["aesel.dropped": "\(refused)"])
        }
    }

    /// Ends a flush. Updates to write again go back under what was recorded meanwhile (newer wins), except
    /// those of records deleted meanwhile (``discard(key:)``).
    private func finishWriting(requeueing transforms: [String: TransformUpdate] = [:], _ values: [String: PropertyValuesUpdate] = [:]) {
        state.withLockedValue { state in
            for (key, update) in transforms where state.writing[key] != nil && state.pending[key] == nil {
                state.pending[key] = update
            }
            for (key, update) in values where state.writingValues[key] != nil && state.pendingValues[key] == nil {
                state.pendingValues[key] = update
            }
            state.writing.removeAll(keepingCapacity: true)
            state.writingValues.removeAll(keepingCapacity: true)
        }
    }
}
