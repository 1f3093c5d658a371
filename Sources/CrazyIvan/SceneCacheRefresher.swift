import AeselModel
public import AeselStore
public import CoreMetrics
public import Logging
import NIOCore
public import ServiceLifecycle

/// Keeps the Scene-Device cache current in the background: every refresh interval it pins the scenes of
/// the pair's region (loading new ones) and reloads the devices of every live entry from the store, so
/// that registrations made by other processes sharing the store reach the fan-out within one interval.
/// Entries long expired leave memory here.
public struct SceneCacheRefresher: Service {
    private let fanOut: FanOut
    private let store: any AeselStore
    private let interval: Duration
    private let pinnedRegion: String?
    private let rounds: Counter
    private let logger: Logger

    public init(
        fanOut: FanOut, store: any AeselStore, configuration: SceneDeviceCache.Configuration, logger: Logger,
        rounds: Counter = Counter(label: "aesel_cache_refreshes_total")
    ) {
        self.fanOut = fanOut
        self.store = store
        interval = configuration.refreshInterval
        pinnedRegion = configuration.pinnedRegion
        self.rounds = rounds
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            if Task.isShuttingDownGracefully { break }
            await refreshOnce()
        }
    }

    /// Loads the scenes of the pair's region before the pair takes events; says so if the region has more
    /// than can be pinned.
    public func pinRegionAtStart() async throws {
        guard let pinnedRegion else { return }
        let total = try await pinRegion(pinnedRegion)
        if total > SceneDeviceCache.maximumPinnedScenes {
            logger.warning(
                "the region has more scenes than are pinned; the others load on their first event",
                metadata: ["aesel.region": "\(pinnedRegion)", "aesel.scenes": "\(total)", "aesel.pinned": "\(SceneDeviceCache.maximumPinnedScenes)"])
        }
    }

    /// Pins the first scenes of `region` by key; returns how many the region has.
    private func pinRegion(_ region: String) async throws -> Int {
        let scenes = try await store.scenes(name: nil, region: region)
        await fanOut.pin(Set(scenes.prefix(SceneDeviceCache.maximumPinnedScenes).map(\.key)))
        return scenes.count
    }

    func refreshOnce() async {
        if let pinnedRegion {
            do {
                _ = try await pinRegion(pinnedRegion)
            } catch {
                logger.warning("pinning the region's scenes failed", metadata: ["aesel.region": "\(pinnedRegion)", "error": "\(error)"])
            }
        }
        let cache = fanOut.cache
        for (sceneKey, version) in cache.snapshotForRefresh(grace: TimeAmount(interval)) {
            do {
                let recipients: [Recipient]? =
                    try await store.scene(key: sceneKey) == nil
                    ? nil : try await store.devices(inScene: sceneKey).compactMap { Recipient($0, inScene: sceneKey) }
                cache.finishRefresh(sceneKey: sceneKey, version: version, devices: recipients)
            } catch {
                logger.warning("scene refresh failed", metadata: ["aesel.scene": "\(sceneKey)", "error": "\(error)"])
            }
        }
        rounds.increment()
    }
}
