import AeselModel
public import AeselStore
import CoreMetrics
public import Logging
public import ServiceLifecycle
import Synchronization

/// Write-behind persistence of event transforms: the hot path records the newest transform per object
/// (latest wins), and a background loop writes what changed in one transaction every `interval`.
///
/// Reads see a transform as soon as it is recorded (``newest(objectKey:)``), so the interval trades only
/// how much a crash may lose against store load, never freshness. A slow or failing store never slows
/// forwarding: a failed batch is merged back under newer updates and retried. Graceful shutdown writes
/// everything that is pending.
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
    private let state = Mutex(State())

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
            state.withLock { $0.pending[event.objectKey] = update }
        case .propertyUpdate:
            let update = PropertyValuesUpdate(propertyKey: event.objectKey, sceneKey: event.sceneKey, values: event.values, sequence: event.sequence)
            state.withLock { $0.pendingValues[event.objectKey] = update }
        }
    }

    /// The newest transform recorded for `objectKey` that the store may not hold yet.
    public func newest(objectKey: String) -> TransformUpdate? {
        state.withLock { $0.pending[objectKey] ?? $0.writing[objectKey] }
    }

    /// The newest values recorded for `propertyKey` that the store may not hold yet.
    public func newestValues(propertyKey: String) -> PropertyValuesUpdate? {
        state.withLock { $0.pendingValues[propertyKey] ?? $0.writingValues[propertyKey] }
    }

    /// A transaction has just set this transform: write it again after any event transform already on its
    /// way to the store, so that the acknowledged value is the one that stays.
    public func supersede(_ object: SceneObject) {
        state.withLock { $0.pending[object.key] = TransformUpdate(objectKey: object.key, sceneKey: object.sceneKey, transform: object.transform, sequence: 0) }
    }

    /// The same for a property's values.
    public func supersede(_ property: SceneProperty) {
        state.withLock { $0.pendingValues[property.key] = PropertyValuesUpdate(propertyKey: property.key, sceneKey: property.sceneKey, values: property.values, sequence: 0) }
    }

    /// Forgets what events recorded for a key, when its record was deleted.
    public func discard(key: String) {
        state.withLock { state in
            state.pending[key] = nil
            state.writing[key] = nil
            state.pendingValues[key] = nil
            state.writingValues[key] = nil
        }
    }

    public func run() async throws {
        // Not cancelled on graceful shutdown: a write cut short would only be retried below.
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: interval)
            await flush()
        }
        // The last flush runs in its own task so that even a cancelled service writes what it holds.
        await Task { await self.flush() }.value
    }

    /// Writes everything pending now.
    public func flush() async {
        let (transforms, values) = state.withLock { state in
            state.writing = state.pending
            state.pending.removeAll(keepingCapacity: true)
            state.writingValues = state.pendingValues
            state.pendingValues.removeAll(keepingCapacity: true)
            return (state.writing, state.writingValues)
        }
        guard !transforms.isEmpty || !values.isEmpty else { return }
        do {
            try await store.applyTransforms(Array(transforms.values))
            try await store.applyPropertyValues(Array(values.values))
            metrics.persisted.increment(by: transforms.count + values.count)
            state.withLock { state in
                state.writing.removeAll(keepingCapacity: true)
                state.writingValues.removeAll(keepingCapacity: true)
            }
        } catch {
            // One bad update must not hold back the others for ever: write them one by one. When none
            // goes through the store is down, so all wait for the next flush; otherwise the ones the store
            // refuses are dropped.
            metrics.persistFailures.increment()
            logger.warning("write-behind batch failed; writing it one by one", metadata: ["error": "\(error)", "aesel.batch": "\(transforms.count + values.count)"])
            var failedTransforms: [String: TransformUpdate] = [:]
            var failedValues: [String: PropertyValuesUpdate] = [:]
            for (key, update) in transforms where (try? await store.applyTransforms([update])) == nil { failedTransforms[key] = update }
            for (key, update) in values where (try? await store.applyPropertyValues([update])) == nil { failedValues[key] = update }
            let failed = failedTransforms.count + failedValues.count
            let storeDown = failed == transforms.count + values.count
            state.withLock { state in
                if storeDown {
                    state.pending.merge(failedTransforms) { newer, _ in newer }
                    state.pendingValues.merge(failedValues) { newer, _ in newer }
                }
                state.writing.removeAll(keepingCapacity: true)
                state.writingValues.removeAll(keepingCapacity: true)
            }
            if storeDown { return }
            if failed > 0 {
                metrics.persistFailures.increment(by: failed)
                logger.error("write-behind dropped updates the store refuses", metadata: ["aesel.dropped": "\(failed)"])
            }
        }
    }
}
