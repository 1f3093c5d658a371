import AeselHTTP
import AeselModel
import AeselStore
import AeselWire
import CLyman
import CoreMetrics
import CrazyIvan
import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import NIOWebSocket

/// WebSocket devices (docs/protocol.md, WebSocket devices): `GET /v1/scene/{scene}/socket`, upgraded, with
/// the credentials of any scene route (or, from a browser, `access_token` or `api_key` in the query). A
/// device (`?device=KEY`, a new key if none) receives the scene's events as JSON text messages and sends
/// updates in either event format, which CLyman checks as it checks datagrams: scene, locks, sequence
/// numbers and rate, with the device key as the sender. An observer (`?observe=true`) only receives.
///
/// Served where both halves run in one process (`aesel serve`, `aesel pair`): updates go in through this
/// process's event port and come out of its fan-out.
struct WebSocketDeviceRoutes {
    let store: any AeselStore
    let port: EventPort
    let fanOut: WebSocketFanOut
    /// How often an observer's messages are written: it receives each object's newest pose at most
    /// this often, so that many viewers cost the fan-out little.
    let observerInterval: Duration
    private let observerSends = Counter(label: "aesel_websocket_dropped_total", dimensions: [("reason", "observer")])

    init(store: any AeselStore, port: EventPort, fanOut: WebSocketFanOut, observerInterval: Duration) {
        (self.store, self.port, self.fanOut, self.observerInterval) = (store, port, fanOut, observerInterval)
    }

    /// The first message of every connection: who it is in which scene.
    struct Welcome: Codable {
        struct Body: Codable {
            var scene: String
            var device: String
            var observer: Bool
        }

        var aesel_socket: Body
    }

    func add(to router: Router<AeselRequestContext>) {
        router.group().add(middleware: SceneGuard<AeselRequestContext>(list: .scenes)).ws("/v1/scene/{scene}/socket") { request, context in
            let sceneKey = try context.parameters.decoded("scene")
            let query = request.uri.queryParameters
            let deviceKey = query.get("device") ?? ""
            guard EventCodec.isValidKey(sceneKey), deviceKey.utf8.count <= 255, !deviceKey.contains("\0") else {
                throw EnvelopeError(.badRequest, .translationError, "scene and device keys are at most 255 bytes", list: .scenes)
            }
            guard try await store.scene(key: sceneKey) != nil else {
                throw EnvelopeError.notFound("no scene \(sceneKey)", list: .scenes, messageType: 0)
            }
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            context.requestContext.connectionUpgraded()
            let query = context.request.uri.queryParameters
            let sceneKey = try context.requestContext.parameters.decoded("scene")
            let deviceKey = query.get("device").flatMap { $0.isEmpty ? nil : $0 } ?? KeyGenerator.uuid()
            let outbox = WebSocketOutbox(sceneKey: sceneKey, deviceKey: deviceKey, isObserver: query.get("observe") == "true")
            try await serve(outbox, inbound: inbound, outbound: outbound)
        }
    }

    private func serve(_ outbox: WebSocketOutbox, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        let welcome = Welcome(aesel_socket: .init(scene: outbox.sceneKey, device: outbox.deviceKey, observer: outbox.isObserver))
        try await outbound.write(.text(String(decoding: try JSONEncoder().encode(welcome), as: UTF8.self)))
        fanOut.add(outbox)
        defer { fanOut.remove(outbox) }
        try await withThrowingTaskGroup { group in
            group.addTask { try await write(outbox, to: outbound) }
            for try await message in inbound.messages(maxSize: EventCodec.maximumDatagramSize) {
                guard !outbox.isObserver else {
                    observerSends.increment()
                    continue
                }
                let buffer: ByteBuffer
                switch message {
                case .text(let text): buffer = ByteBuffer(string: text)
                case .binary(let data): buffer = data
                }
                port.submit(webSocketMessage: buffer, deviceKey: outbox.deviceKey, sceneKey: outbox.sceneKey)
            }
            // The browser closed: the writer ends with the outbox.
            outbox.close()
            try await group.waitForAll()
        }
    }

    /// Writes what the fan-out queued, until the outbox closes; an observer's at most every
    /// `observerInterval`. A connection closed as too slow is told so (1013, try again later).
    private func write(_ outbox: WebSocketOutbox, to outbound: WebSocketOutboundWriter) async throws {
        while let messages = await outbox.next() {
            for message in messages {
                try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: .text, data: message)))
            }
            fanOut.sent(messages.count)
            if outbox.isObserver { try await Task.sleep(for: observerInterval) }
        }
        if outbox.closedAsTooSlow { try await outbound.close(.unknown(1013), reason: "too far behind the scene's events") }
    }
}
