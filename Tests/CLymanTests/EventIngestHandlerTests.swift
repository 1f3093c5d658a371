import AeselModel
import AeselStore
import AeselStream
import AeselTesting
import CLyman
import Logging
import Metrics
import MetricsTestKit
import NIOCore
import NIOEmbedded
import Testing
import NIOConcurrencyHelpers

/// CLyman's ingest handler on a testing channel: datagrams in, what it publishes and counts out.
@Suite("Event ingest handler")
struct EventIngestHandlerTests {
    /// The change stream, as the handler sees it: it records what is published.
    final class RecordingStream: ChangeStream {
        private let events = NIOLockedValueBox<[ObjectEvent]>([])
        var isHealthy: Bool { true }
        var droppedCount: Int { 0 }

        func publish(_ event: ChangeEvent) {
            if case .update(let update) = event { events.withLockedValue { $0.append(update) } }
        }

        var published: [ObjectEvent] { events.withLockedValue { $0 } }
    }

    /// The devices registered at each address.
    struct Senders: SenderDirectory {
        var devices: [SocketAddress: String] = [:]

        func deviceKey(in sceneKey: String, at address: SocketAddress) -> String? { devices[address] }
    }

    /// A scene load the test lets finish when it wants.
    final class Gate: Sendable {
        private let opened = NIOLockedValueBox(false)

        func open() { opened.withLockedValue { $0 = true } }

        func wait() async {
            while !opened.withLockedValue({ $0 }) { try? await Task.sleep(for: .milliseconds(2)) }
        }
    }

    /// A handler in a testing channel, its stream and counters, over scenes whose members are `scenes`.
    struct Harness {
        let channel: NIOAsyncTestingChannel
        let stream = RecordingStream()
        let metrics: TestMetrics
        let locks = ObjectLocks()
        let store: any AeselStore
        let location: TestStore

        static let device = try! SocketAddress(ipAddress: "127.0.0.1", port: 40_001)
        static let otherDevice = try! SocketAddress(ipAddress: "127.0.0.1", port: 40_002)

        init(scenes: [String: SceneMemberKeys], gate: Gate? = nil, senders: Senders = Senders()) async throws {
            let metrics = TestMetrics()
            self.metrics = metrics
            let ingestMetrics = IngestMetrics(factory: metrics)
            location = try await TestStore.make(.memory)
            store = try await location.open()
            let writeBehind = TransformWriteBehind(store: store, interval: .seconds(60), metrics: ingestMetrics, logger: Logger(label: "test"))
            let actionEdits = EventActionEdits(store: store, writeBehind: writeBehind, metrics: ingestMetrics, logger: Logger(label: "test"))
            let members = SceneMembers(metrics: ingestMetrics) { sceneKey in
                await gate?.wait()
                return scenes[sceneKey] ?? SceneMemberKeys()
            }
            channel = NIOAsyncTestingChannel()
            let (channel, stream, locks) = (self.channel, self.stream, self.locks)
            try await channel.testingEventLoop.executeInContext {
                let handler = EventIngestHandler(writeBehind: writeBehind, actionEdits: actionEdits, metrics: ingestMetrics, locks: locks, senders: senders, members: members)
                try channel.pipeline.syncOperations.addHandler(handler)
                handler.attach(stream)
            }
        }

        func send(_ json: String, from address: SocketAddress = Harness.device) async throws {
            try await channel.writeInbound(AddressedEnvelope(remoteAddress: address, data: ByteBuffer(string: json)))
        }

        func update(_ object: String, in scene: String, seq: Int) -> String {
            #"{"msg_type":1,"key":"\#(object)","scene":"\#(scene)","seq":\#(seq),"transform":[1,0,0,\#(seq)]}"#
        }

        func dropped(_ reason: String) -> Int64 {
            (try? metrics.expectCounter("aesel_udp_dropped_total", [("reason", reason)]).totalValue) ?? 0
        }

        /// Waits for `count` published events (loads finish on another task).
        func published(count: Int) async -> [ObjectEvent] {
            _ = await eventually(timeout: .seconds(5)) { stream.published.count >= count }
            return stream.published
        }

        func close() async throws {
            _ = try? await channel.finish()
            try await store.close()
            try await location.remove()
        }
    }

    @Test("Events of a loading scene wait, then go on in order; a later one does not overtake them")
    func heldWhileLoading() async throws {
        let gate = Gate()
        let harness = try await Harness(scenes: ["s": SceneMemberKeys(objects: ["o"])], gate: gate)
        for seq in 1...3 { try await harness.send(harness.update("o", in: "s", seq: seq)) }
        #expect(harness.stream.published.isEmpty, "nothing goes on before the scene's members are known")
        gate.open()
        _ = await harness.published(count: 3)
        try await harness.send(harness.update("o", in: "s", seq: 4))
        #expect(harness.stream.published.map(\.sequence) == [1, 2, 3, 4])
        try await harness.close()
    }

    @Test("An event for an object outside the scene it names is dropped and counted")
    func outsideScene() async throws {
        let harness = try await Harness(scenes: ["s": SceneMemberKeys(objects: ["o"]), "t": SceneMemberKeys(objects: ["x"])])
        try await harness.send(harness.update("o", in: "s", seq: 1))
        _ = await harness.published(count: 1)
        try await harness.send(harness.update("x", in: "s", seq: 2))
        try await harness.send(harness.update("o", in: "s", seq: 3))
        let published = await harness.published(count: 2)
        #expect(published.map(\.objectKey) == ["o", "o"])
        #expect(harness.dropped("not_in_scene") == 1)
        try await harness.close()
    }

    @Test("Stale and repeated numbers are dropped; an unnumbered event always goes on")
    func staleness() async throws {
        let harness = try await Harness(scenes: ["s": SceneMemberKeys(objects: ["o"])])
        for seq in [1, 3, 2, 3, 0, 4] { try await harness.send(harness.update("o", in: "s", seq: seq)) }
        let published = await harness.published(count: 4)
        #expect(published.map(\.sequence) == [1, 3, 0, 4])
        #expect(harness.dropped("stale") == 2)
        try await harness.close()
    }

    @Test("Two devices move one object in turn: each is judged only against its own numbers")
    func twoWriters() async throws {
        let harness = try await Harness(scenes: ["s": SceneMemberKeys(objects: ["o"])])
        try await harness.send(harness.update("o", in: "s", seq: 500), from: Harness.device)
        try await harness.send(harness.update("o", in: "s", seq: 1), from: Harness.otherDevice)
        try await harness.send(harness.update("o", in: "s", seq: 501), from: Harness.device)
        try await harness.send(harness.update("o", in: "s", seq: 2), from: Harness.otherDevice)
        try await harness.send(harness.update("o", in: "s", seq: 2), from: Harness.otherDevice)
        let published = await harness.published(count: 4)
        #expect(published.map(\.sequence) == [500, 1, 501, 2], "in the order received; only the repeat is stale")
        #expect(harness.dropped("stale") == 1)
        try await harness.close()
    }

    @Test("A device that starts counting again with a larger epoch is heard at once")
    func restartWithEpoch() async throws {
        let harness = try await Harness(scenes: ["s": SceneMemberKeys(objects: ["o"])])
        try await harness.send(#"{"msg_type":1,"key":"o","scene":"s","seq":700,"epoch":1764640000}"#)
        try await harness.send(#"{"msg_type":1,"key":"o","scene":"s","seq":1,"epoch":1764640100}"#)
        try await harness.send(#"{"msg_type":1,"key":"o","scene":"s","seq":699,"epoch":1764640000}"#)
        let published = await harness.published(count: 2)
        #expect(published.map(\.sequence) == [700, 1])
        #expect(published.map(\.epoch) == [1_764_640_000, 1_764_640_100])
        #expect(harness.dropped("stale") == 1, "the late event of the earlier run")
        try await harness.close()
    }

    @Test("Updates of an object locked by another device are dropped; its owner's go on")
    func locks() async throws {
        let harness = try await Harness(
            scenes: ["s": SceneMemberKeys(objects: ["o"])], senders: Senders(devices: [Harness.device: "owner", Harness.otherDevice: "intruder"]))
        harness.locks.set(owner: "owner", of: "o")
        try await harness.send(harness.update("o", in: "s", seq: 1), from: Harness.otherDevice)
        try await harness.send(harness.update("o", in: "s", seq: 2), from: Harness.device)
        let published = await harness.published(count: 1)
        #expect(published.map(\.sequence) == [2])
        #expect(harness.dropped("locked") == 1)
        try await harness.close()
    }

    @Test("Malformed datagrams are counted by reason, and the next good one still goes on")
    func malformed() async throws {
        let harness = try await Harness(scenes: ["s": SceneMemberKeys(objects: ["o"])])
        try await harness.send("{not json")
        try await harness.send(#"{"msg_type":1,"key":"o","scene":"s","seq":"one"}"#)
        try await harness.send(harness.update("o", in: "s", seq: 1))
        let published = await harness.published(count: 1)
        #expect(published.count == 1)
        let received = try harness.metrics.expectCounter("aesel_udp_received_total").totalValue
        #expect(received == 3)
        let drops = harness.metrics.counters(label: "aesel_udp_dropped_total").reduce(0) { $0 + $1.totalValue }
        #expect(drops == 2)
        try await harness.close()
    }
}
