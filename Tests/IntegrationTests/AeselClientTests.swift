import AeselLocalCluster
import AeselTesting
import AeselClient
import AeselModel
import AeselWire
import Foundation
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
import NIOConcurrencyHelpers
#endif

/// The device SDK against a real `aesel serve`; its failover is tested against Adrestia (ClusterTests).
@Suite("AeselClient", .timeLimit(.minutes(2)))
struct AeselClientTests {
    static func moved(_ step: Int) -> Transform {
        Transform(rowMajor: [1, 0, 0, Double(step), 0, 1, 0, 0.25, 0, 0, 1, -Double(step)])
    }

    @Test("Three clients: the other two get all 200 updates in order, the sender none; close deregisters")
    func threeClients() async throws {
        let server = try TestServer()
        defer { server.stop() }
        func configuration(_ device: String, _ format: EventFormat) -> AeselClientConfiguration {
            AeselClientConfiguration(gateways: [server.url], sceneKey: "client-arena", deviceKey: device, format: format)
        }
        let sender = try await AeselClient.connect(configuration("sender", .binary))
        let binaryReceiver = try await AeselClient.connect(configuration("binary-receiver", .binary))
        let jsonReceiver = try await AeselClient.connect(configuration("json-receiver", .json))
        let clients = [sender, binaryReceiver, jsonReceiver]
        let inboxes = clients.map(Inbox.init)
        for client in clients {
            #expect(client.endpoint.port == Int(server.udpPort))
        }

        // Creating an object sends its JSON record to every device: not an update, so skipped and counted.
        let object = try await server.createObject(in: "client-arena")
        #expect(await eventually { clients.allSatisfy { $0.skippedDatagrams == 1 } })

        for step in 1...200 {
            sender.send(ObjectEvent(sceneKey: "client-arena", objectKey: object, transform: Self.moved(step), sequence: UInt64(step)))
        }
        for inbox in inboxes.dropFirst() {
            #expect(await eventually { inbox.count >= 200 })
            let events = inbox.events
            #expect(events.map(\.sequence) == Array(1...200))
            #expect(events.allSatisfy { $0.objectKey == object && $0.sceneKey == "client-arena" })
            #expect(events.allSatisfy { $0.epoch == sender.epoch }, "the SDK numbers its events in an epoch of its own")
            #expect(events.map(\.transform) == (1...200).map(Self.moved))
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(inboxes[0].count == 0)
        #expect(inboxes.dropFirst().allSatisfy { $0.count == 200 })
        #expect(clients.allSatisfy { $0.failovers == 0 })

        // Closing deregisters: the next update reaches the remaining receiver and nothing at the closed
        // client's address, and its stream ends.
        let closedPort = try #require(jsonReceiver.localAddress.port)
        await jsonReceiver.close()
        await inboxes[2].task.value
        let scene = try await server.request("GET", "/v1/scene/client-arena")
        let devices = (scene.json["scenes"] as? [[String: Any]])?.first?["devices"] as? [[String: Any]]
        #expect(Set(devices?.compactMap { $0["key"] as? String } ?? []) == ["sender", "binary-receiver"])
        let listener = try UDPSocket(port: UInt16(closedPort))
        defer { listener.close() }
        sender.send(ObjectEvent(sceneKey: "client-arena", objectKey: object, transform: Self.moved(201), sequence: 201))
        #expect(await eventually { inboxes[1].count == 201 })
        try await Task.sleep(for: .milliseconds(100))
        var buffer = [UInt8](repeating: 0, count: 65536)
        #expect(buffer.withUnsafeMutableBytes { listener.receive(into: $0, flags: Int32(MSG_DONTWAIT)) } == nil)

        await sender.close()
        await binaryReceiver.close()
        await jsonReceiver.close()
    }

    /// Before keepalives a device that only sends heard nothing and asked `?failed=` every silence timeout.
    @Test("A client that only sends, alone in its scene, keeps its endpoint: its keepalives are answered, and it reports no failure", arguments: [EventFormat.binary, .json])
    func sendOnlyClientStays(format: EventFormat) async throws {
        let server = try TestServer()
        defer { server.stop() }
        // A second of silence, so that a server starved of CPU on a loaded machine is not taken for dead.
        let client = try await AeselClient.connect(
            AeselClientConfiguration(gateways: [server.url], sceneKey: "quiet", deviceKey: "lonely", format: format, silenceTimeout: .seconds(1))
        )
        let endpoint = client.endpoint
        let object = try await server.createObject(in: "quiet")
        // Four timeouts of sending and hearing nothing back (it does not receive its own updates).
        for step in 1...80 {
            client.send(ObjectEvent(sceneKey: "quiet", objectKey: object, transform: Self.moved(step), sequence: UInt64(step)))
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(client.failedReports == 0)
        #expect(client.failovers == 0)
        #expect(client.endpoint == endpoint)
        #expect(client.keepaliveRoundTrip != nil)
        #expect(try await server.metrics()["aesel_udp_keepalives_total"] ?? 0 > 0)
        await client.close()
    }

    @Test("A client whose pair is killed (kill -9) and stays silent asks for another endpoint")
    func killedPairIsReported() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let client = try await AeselClient.connect(AeselClientConfiguration(gateways: [server.url], sceneKey: "doomed", deviceKey: "survivor"))
        #expect(await eventually { client.keepaliveRoundTrip != nil })
        #expect(client.failedReports == 0)
        server.process.stop(signal: SIGKILL)
        // `aesel serve` is its own gateway, so the question finds nobody; that it is asked is the point.
        #expect(await eventually { client.failedReports > 0 })
        await client.close()
    }

    @Test("A refused registration throws the envelope's error")
    func refusedRegistration() async throws {
        let server = try TestServer()
        defer { server.stop() }
        do {
            // Keys are at most 255 bytes: the server answers err_code 122 (in a 200, as the original).
            _ = try await AeselClient.connect(AeselClientConfiguration(gateways: [server.url], sceneKey: "s", deviceKey: String(repeating: "d", count: 300)))
            Issue.record("connect succeeded")
        } catch let error as AeselClientError where error.code == .gatewayRefused {
            let refusal = try #require(error.underlyingError as? GatewayRefusal)
            #expect(refusal.code == 122)
            #expect(refusal.message.contains("255 bytes"))
        }
    }
}

/// Collects a client's updates until its stream ends.
private final class Inbox: Sendable {
    private let received: Received
    let task: Task<Void, Never>

    private final class Received: Sendable {
        let events = NIOLockedValueBox<[ObjectEvent]>([])
    }

    init(_ client: AeselClient) {
        let received = Received()
        self.received = received
        task = Task {
            for await event in client.updates { received.events.withLockedValue { $0.append(event) } }
        }
    }

    var events: [ObjectEvent] { received.events.withLockedValue { $0 } }
    var count: Int { received.events.withLockedValue { $0.count } }
}
