import AeselModel
public import AeselStore
import CoreMetrics
public import NIOCore
import NIOConcurrencyHelpers

/// Tells who sent a datagram when CLyman runs without CrazyIvan in its process: the registrations of each
/// scene that sends events, read from the shared store, refreshed every `refreshInterval`. A scene seen for
/// the first time answers nil until it is loaded (a few milliseconds).
public final class StoreSenderDirectory: SenderDirectory {
    struct Entry {
        var devices: [SocketAddress: String]
        var loadedAt: NIODeadline
        var loading: Bool
    }

    static let maximumScenes = 10_000

    private let store: any AeselStore
    private let refreshInterval: TimeAmount
    private let entries = NIOLockedValueBox<[String: Entry]>([:])
    private let evictions = Counter(label: "aesel_state_evictions_total", dimensions: [("table", "senders")])

    public init(store: any AeselStore, refreshInterval: TimeAmount = .seconds(2)) {
        self.store = store
        self.refreshInterval = refreshInterval
    }

    public func deviceKey(in sceneKey: String, at address: SocketAddress) -> String? {
        let now = NIODeadline.now()
        let (key, load, evicted) = entries.withLockedValue { entries -> (String?, Bool, Int) in
            // Scene keys come from datagrams: bound what made-up ones can cost.
            var evicted = 0
            if entries[sceneKey] == nil, entries.count >= Self.maximumScenes {
                evicted = entries.count
                entries.removeAll(keepingCapacity: true)
            }
            var entry = entries[sceneKey] ?? Entry(devices: [:], loadedAt: .uptimeNanoseconds(0), loading: false)
            let stale = now - entry.loadedAt > refreshInterval
            let load = stale && !entry.loading
            if load { entry.loading = true }
            entries[sceneKey] = entry
            return (entry.devices[address], load, evicted)
        }
        if evicted > 0 { evictions.increment(by: evicted) }
        if load {
            // Unstructured on purpose: the hot path cannot await; the task ends with the store call.
            Task { await self.load(sceneKey) }
        }
        return key
    }

    private func load(_ sceneKey: String) async {
        let devices = (try? await store.devices(inScene: sceneKey)) ?? []
        var byAddress: [SocketAddress: String] = [:]
        for device in devices {
            if let address = SocketAddress.validated(host: device.hostname, port: device.port) { byAddress[address] = device.key }
        }
        entries.withLockedValue { $0[sceneKey] = Entry(devices: byAddress, loadedAt: .now(), loading: false) }
    }
}
