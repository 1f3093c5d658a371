import AeselAuth
import AeselHTTP
import AeselModel
import AeselStore
import AeselWire
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import HummingbirdWSClient
import Logging
import NIOCore
import NIOWebSocket

/// WebSocket devices through the gateway: `GET /v1/scene/{scene}/socket` is relayed, message by message
/// and both ways, to the same route on the scene's pair, with the caller's credentials and the cluster
/// secret, as the gateway forwards HTTP calls. When the pair goes away the browser's connection is closed
/// with 1012 (service restart): connecting again reaches the scene's new pair.
struct GatewaySocketRoutes {
    let gateway: GatewayRoutes
    let logger: Logger

    func add(to router: Router<AeselRequestContext>) {
        router.group().add(middleware: SceneGuard<AeselRequestContext>(list: .scenes)).ws("/v1/scene/{scene}/socket") { _, context in
            let sceneKey = try context.parameters.decoded("scene")
            guard EventCodec.isValidKey(sceneKey), try await gateway.cluster.store.scene(key: sceneKey) != nil else {
                throw EnvelopeError.notFound("no scene \(sceneKey)", list: .scenes, messageType: 0)
            }
            // Refused here, as HTTP, when the scene has no healthy pair to go to.
            _ = try await gateway.assignedPair(sceneKey, region: nil)
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            context.requestContext.connectionUpgraded()
            let pair = try await gateway.assignedPair(try context.requestContext.parameters.decoded("scene"), region: nil)
            do {
                try await relay(context.request, inbound: inbound, outbound: outbound, to: pair.crazyIvanHTTP)
            } catch {
                logger.debug("websocket relay ended", metadata: ["aesel.pair": "\(pair.id)", "aesel.error": "\(error)"])
            }
            try? await outbound.close(.unknown(1012), reason: "the scene's pair went away: connect again")
        }
    }

    /// Until either side closes.
    private func relay(_ request: Request, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, to base: String) async throws {
        var configuration = WebSocketClientConfiguration()
        for field in request.headers where field.name == .authorization || field.name.canonicalName == AccessControl.apiKeyHeaderName.lowercased() {
            configuration.additionalHeaders.append(field)
        }
        if let secret = ClusterCredentials.secret, let name = HTTPField.Name(ClusterSecret.headerName) {
            configuration.additionalHeaders[name] = secret.value
        }
        let url = (base.hasPrefix("https://") ? "wss://" + base.dropFirst(8) : "ws://" + base.dropFirst(7)) + request.uri.string
        try await WebSocketClient.connect(url: url, configuration: configuration, tlsConfiguration: ClusterTLS.clientConfiguration, logger: logger) {
            pairInbound, pairOutbound, _ in
            try await withThrowingTaskGroup { group in
                group.addTask { try await Self.copy(pairInbound, to: outbound) }
                group.addTask { try await Self.copy(inbound, to: pairOutbound) }
                try await group.next()
                group.cancelAll()
            }
        }
    }

    private static func copy(_ inbound: WebSocketInboundStream, to outbound: WebSocketOutboundWriter) async throws {
        for try await message in inbound.messages(maxSize: 1 << 20) {
            switch message {
            case .text(let text): try await outbound.write(.text(text))
            case .binary(let data): try await outbound.write(.binary(data))
            }
        }
    }
}
