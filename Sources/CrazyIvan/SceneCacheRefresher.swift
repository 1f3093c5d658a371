public import AeselStore
public import Logging
import NIOCore
public import ServiceLifecycle

/// Reloads every cached scene's devices from the store in the background, so registrations made by other
/// processes sharing the store reach the fan-out, and evicts scenes that have had no event for a while.
public struct SceneCacheRefresher: Service {
    private let cache: SceneDeviceCache
    private let store: any AeselStore
    private let interval: Duration
    private let idleLimit: TimeAmount
    private let logger: Logger

    public init(cache: SceneDeviceCache, store: any AeselStore, interval: Duration = .seconds(2), idleLimit: TimeAmount = .minutes(10), logger: Logger) {
        self.cache = cache
        self.store = store
        self.interval = interval
        self.idleLimit = idleLimit
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            if Task.isShuttingDownGracefully { break }
            await refreshOnce()
        }
    }

    func refreshOnce() async {
        for (sceneKey, version) in cache.snapshotForRefresh(idleLimit: idleLimit) {
            do {
                let recipients: [Recipient]? =
                    try await store.scene(key: sceneKey) == nil
                    ? nil : try await store.devices(inScene: sceneKey).compactMap(Recipient.init)
                cache.finishRefresh(sceneKey: sceneKey, version: version, devices: recipients)
            } catch {
                logger.warning("scene refresh failed", metadata: ["aesel.scene": "\(sceneKey)", "error": "\(error)"])
            }
        }
    }
}
