import AeselModel
import AeselTesting
import Foundation
import Testing

/// CrazyIvan's Scene-Device cache seen from outside (docs/architecture.md, "The Scene-Device cache"): two
/// real `aesel serve` processes on one PostgreSQL store, one writing registrations the other's cache must
/// (or must not yet) see.
@Suite("Scene-Device cache across processes", .serialized, .timeLimit(.minutes(3)))
struct SceneCacheTests {
    /// A scene with a sender, a receiver and an object, written through `writer`.
    struct Scene {
        let key: String
        let object: String
        let sender: TestDevice
        let receiver: TestDevice
        private let sequence = Counter()

        init(_ key: String, region: String, writer: TestServer) async throws {
            self.key = key
            #expect(try await writer.request("PUT", "/v1/scene/\(key)", body: #"{"scenes":[{"name":"\#(key)","region":"\#(region)"}]}"#).status == 200)
            sender = try TestDevice("sender")
            receiver = try TestDevice("receiver")
            try await writer.register(sender, in: key)
            try await writer.register(receiver, in: key)
            object = try await writer.createObject(in: key)
        }

        /// Sends the next update of the scene's object from its sender to `server`.
        func send(to server: TestServer) {
            sender.send(#"{"msg_type":1,"key":"\#(object)","scene":"\#(key)","seq":\#(sequence.next())}"#, to: server.udpPort)
        }

        func drain() {
            sender.drain()
            receiver.drain()
        }
    }

    final class Counter: @unchecked Sendable {
        // @unchecked: each test uses its counters from one task.
        private var value: UInt64 = 0
        func next() -> UInt64 {
            value += 1
            return value
        }
    }

    @Test("A registration written by another process reaches the fan-out within one refresh")
    func refreshAcrossProcesses() async throws {
        let (url, remove) = try await TestStore.postgresDatabase()
        let writer = try TestServer(arguments: ["--store", url])
        let server = try TestServer(arguments: ["--store", url, "--cache-refresh-interval", "200"])
        defer {
            server.stop()
            writer.stop()
        }
        let scene = try await Scene("live", region: "", writer: writer)
        scene.drain()
        scene.send(to: server)
        #expect(await scene.receiver.receiveEvents(1).first != nil, "the scene is cached")

        let late = try TestDevice("late")
        try await writer.register(late, in: scene.key)
        // The round that was running when the registration committed may have read before it; the next one did not.
        let rounds = try await server.metrics()["aesel_cache_refreshes_total"] ?? 0
        #expect(try await eventually(timeout: .seconds(30)) { (try await server.metrics()["aesel_cache_refreshes_total"] ?? 0) >= rounds + 2 })
        scene.send(to: server)
        #expect(await late.receiveEvents(1).first != nil)
        #expect(await scene.receiver.receiveEvents(1).first != nil)
        server.stop()
        writer.stop()
        try await remove()
    }

    @Test("Entries expire by age and reload on their next event; the scenes of the pair's region never expire")
    func expiryAndPinning() async throws {
        let (url, remove) = try await TestStore.postgresDatabase()
        let writer = try TestServer(arguments: ["--store", url])
        defer { writer.stop() }
        let home = try await Scene("home", region: "r1", writer: writer)
        let away = try await Scene("away", region: "r2", writer: writer)
        // No refresh in the test's time: only expiry can bring a registration in.
        let server = try TestServer(arguments: ["--store", url, "--region", "r1", "--cache-ttl", "1", "--cache-refresh-interval", "3600000"])
        defer { server.stop() }
        for scene in [home, away] {
            scene.drain()
            scene.send(to: server)
            #expect(await scene.receiver.receiveEvents(1).first != nil, "\(scene.key) is cached")
        }
        let late = try TestDevice("late")
        try await writer.register(late, in: home.key)
        try await writer.register(late, in: away.key)
        try await Task.sleep(for: .milliseconds(1500))
        home.send(to: server)
        #expect(await home.receiver.receiveEvents(1).first != nil)
        #expect(late.receive() == nil, "the pinned scene did not expire, so it did not reload")
        away.send(to: server)
        #expect(await away.receiver.receiveEvents(1).first != nil)
        #expect(await late.receiveEvents(1).first?.sceneKey == away.key, "the expired scene reloaded on its next event")
        server.stop()
        writer.stop()
        try await remove()
    }

    @Test("--forward-while-loading: an event of a loading scene goes to the devices known so far; the region's scenes are loaded at start")
    func forwardWhileLoading() async throws {
        let (url, remove) = try await TestStore.postgresDatabase()
        let writer = try TestServer(arguments: ["--store", url])
        defer { writer.stop() }
        let home = try await Scene("home", region: "r1", writer: writer)
        let away = try await Scene("away", region: "r2", writer: writer)
        let server = try TestServer(arguments: ["--store", url, "--region", "r1", "--forward-while-loading"])
        defer { server.stop() }
        home.drain()
        away.drain()
        home.send(to: server)
        #expect(await home.receiver.receiveEvents(1).first != nil, "the pinned scene was loaded at start")
        away.send(to: server)
        #expect(away.receiver.receive() == nil, "nobody was known while the scene loaded, and nothing was held")
        // Once loaded, the scene's events reach its devices.
        #expect(await eventually {
            away.send(to: server)
            return away.receiver.receiveEvent() != nil
        })
        server.stop()
        writer.stop()
        try await remove()
    }

    @Test("Without --forward-while-loading the first events of a scene wait for its load and all arrive in order")
    func holdWhileLoading() async throws {
        let (url, remove) = try await TestStore.postgresDatabase()
        let writer = try TestServer(arguments: ["--store", url])
        defer { writer.stop() }
        let away = try await Scene("away", region: "r2", writer: writer)
        let server = try TestServer(arguments: ["--store", url, "--region", "r1"])
        defer { server.stop() }
        away.drain()
        for _ in 1...20 { away.send(to: server) }
        #expect(await away.receiver.receiveEvents(20).map(\.sequence) == Array(1...20))
        server.stop()
        writer.stop()
        try await remove()
    }
}
