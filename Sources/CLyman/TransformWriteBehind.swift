import CoreMetrics
import AeselModel
public import AeselStore
public import Logging
public import ServiceLifecycle
import Synchronization

/// Write-behind persistence of event transforms: the hot path records the newest transform per object
/// (latest wins), and a background loop writes what changed in one transaction every `interval`.
///
/// A slow or failing store never slows forwarding: a failed batch is merged back under newer updates and
/// retried. Graceful shutdown writes everything that is pending.
public final class TransformWriteBehind: Service {
    private let store: any AeselStore
    private let interval: Duration
    private let logger: Logger
    private let metrics: IngestMetrics
    private let pending = Mutex<[String: TransformUpdate]>([:])

    public init(store: any AeselStore, interval: Duration = .milliseconds(10), metrics: IngestMetrics, logger: Logger) {
        self.store = store
        self.interval = interval
        self.metrics = metrics
        self.logger = logger
    }

    /// Called on the hot path, after the event has been forwarded.
    func record(_ event: ObjectEvent) {
        let update = TransformUpdate(objectKey: event.objectKey, transform: event.transform, sequence: event.sequence)
        pending.withLock { $0[event.objectKey] = update }
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
        let batch = pending.withLock { pending in
            let batch = pending
            pending.removeAll(keepingCapacity: true)
            return batch
        }
        guard !batch.isEmpty else { return }
        do {
            try await store.applyTransforms(Array(batch.values))
            metrics.persisted.increment(by: batch.count)
        } catch {
            metrics.persistFailures.increment()
            logger.warning("write-behind batch failed; will retry", metadata: ["error": "\(error)", "aesel.batch": "\(batch.count)"])
            pending.withLock { pending in
                pending.merge(batch) { newer, _ in newer }
            }
        }
    }
}
