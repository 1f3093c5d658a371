import AeselModel
import AeselStore
import AeselTesting
import CrazyIvan
import Metrics
import MetricsTestKit
import NIOCore
import NIOPosix
import Testing

/// CrazyIvan's fan-out in-process: a real sending socket and device sockets on loopback, the scene's
/// registrations in a real store, and events delivered from several threads at once.
@Suite("Fan-out")
struct FanOutTests {
    struct Harness {
        let location: TestStore
        let store: any AeselStore
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let socket: FanOutSocket
        let fanOut: FanOut
        let metrics = TestMetrics()
        let devices: [TestDevice]

        init(devices keys: [String], echo: Bool = false, cache: SceneDeviceCache.Configuration = .init()) async throws {
            location = try await TestStore.make(.memory)
            store = try await location.open()
            devices = try keys.map { try TestDevice($0) }
            try await store.createScene(Scene(key: "s", name: "s"))
            for device in devices { try await store.register(Device(key: device.key, hostname: "127.0.0.1", port: Int(device.port)), inScene: "s") }
            socket = try FanOutSocket(host: "127.0.0.1")
            fanOut = FanOut(
                socket: socket, eventLoop: group.next(), cache: SceneDeviceCache(configuration: cache), store: store,
                configuration: .init(echoToSender: echo), metrics: FanOutMetrics(factory: metrics))
        }

        func update(_ sequence: UInt64, from sender: String = "") -> ChangeEvent {
            var event = ObjectEvent(sceneKey: "s", objectKey: "o", transform: .identity, sequence: sequence)
            event.senderDeviceKey = sender
            return .update(event)
        }

        func close() async throws {
            socket.close()
            for device in devices { device.close() }
            try await store.close()
            try await location.remove()
            try await group.shutdownGracefully()
        }
    }

    @Test("The first events of an uncached scene wait for its load and reach every device but the sender, in order")
    func loadThenDeliver() async throws {
        let harness = try await Harness(devices: ["a", "b", "c"])
        for sequence in 1...50 { harness.fanOut.deliver(harness.update(UInt64(sequence), from: "a")) }
        for device in harness.devices.dropFirst() {
            #expect(await device.receiveEvents(50).map(\.sequence) == Array(1...50))
        }
        #expect(await harness.devices[0].receiveEvents(1, timeout: .milliseconds(100)).isEmpty, "the sender gets none")
        try await harness.close()
    }

    @Test("Events delivered from two threads while the scene loads keep each thread's order, and none is lost")
    func concurrentDelivery() async throws {
        let harness = try await Harness(devices: ["a", "b"])
        let fanOut = harness.fanOut
        // Two publishers (the UDP loop and a stream thread, say), odd and even numbers, from the very start.
        await withTaskGroup(of: Void.self) { group in
            for parity in [UInt64(1), 2] {
                group.addTask {
                    for index in UInt64(0)..<100 { fanOut.deliver(harness.update(parity + 2 * index, from: "a")) }
                }
            }
        }
        let received = await harness.devices[1].receiveEvents(200).map(\.sequence)
        #expect(received.count == 200)
        #expect(received.filter { $0 % 2 == 1 } == Array(stride(from: 1, through: 199, by: 2)))
        #expect(received.filter { $0 % 2 == 0 } == Array(stride(from: 2, through: 200, by: 2)))
        try await harness.close()
    }

    @Test("A device registered after the scene is cached gets the next event; a deregistered one none")
    func registrationsApplyAtOnce() async throws {
        let harness = try await Harness(devices: ["a", "b"])
        harness.fanOut.deliver(harness.update(1, from: "a"))
        #expect(await harness.devices[1].receiveEvents(1).map(\.sequence) == [1])
        let late = try TestDevice("late")
        harness.fanOut.registered(try #require(Recipient(Device(key: "late", hostname: "127.0.0.1", port: Int(late.port)), inScene: "s")), in: "s")
        harness.fanOut.deregistered(deviceKey: "b", from: "s")
        harness.fanOut.deliver(harness.update(2, from: "a"))
        #expect(await late.receiveEvents(1).map(\.sequence) == [2])
        #expect(await harness.devices[1].receiveEvents(1, timeout: .milliseconds(100)).isEmpty)
        late.close()
        try await harness.close()
    }

    @Test("Events of a scene the store does not know are dropped and counted")
    func unknownScene() async throws {
        let harness = try await Harness(devices: ["a"])
        harness.fanOut.deliver(.update(ObjectEvent(sceneKey: "nowhere", objectKey: "o", transform: .identity, sequence: 1)))
        let counted = await eventually {
            (try? harness.metrics.expectCounter("aesel_udp_dropped_total", [("reason", "unknown_scene")]).totalValue) == 1
        }
        #expect(counted)
        try await harness.close()
    }

    @Test("Forwarding while loading: the first event of an uncached scene goes to the devices known then (none), later ones to all")
    func forwardWhileLoading() async throws {
        let harness = try await Harness(devices: ["a", "b"], cache: .init(forwardWhileLoading: true))
        let fanOut = harness.fanOut
        fanOut.deliver(harness.update(1, from: "a"))
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: Int(harness.devices[1].port))
        #expect(await eventually { fanOut.deviceKey(in: "s", at: address) == "b" }, "the scene loads")
        fanOut.deliver(harness.update(2, from: "a"))
        #expect(await harness.devices[1].receiveEvents(2, timeout: .milliseconds(500)).map(\.sequence) == [2])
        try await harness.close()
    }

    @Test("Pinned scenes are loaded when pin returns")
    func pin() async throws {
        let harness = try await Harness(devices: ["a", "b"], cache: .init(forwardWhileLoading: true))
        await harness.fanOut.pin(["s"])
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: Int(harness.devices[1].port))
        #expect(harness.fanOut.deviceKey(in: "s", at: address) == "b")
        // With nothing held while loading, only a loaded scene delivers its first event.
        harness.fanOut.deliver(harness.update(1, from: "a"))
        #expect(await harness.devices[1].receiveEvents(1).map(\.sequence) == [1])
        try await harness.close()
    }
}
