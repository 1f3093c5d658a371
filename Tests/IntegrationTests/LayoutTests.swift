import AeselLocalCluster
import AeselTesting
import AeselModel
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// CLyman and CrazyIvan as two processes, joined by a ZeroMQ change stream and a shared store.
@Suite("Two-process layout", .timeLimit(.minutes(2)))
struct LayoutTests {
    enum Transport: String, CaseIterable, CustomTestStringConvertible {
        case ipc, tcp, kafka, udp

        var testDescription: String { rawValue }

        func stream() throws -> String {
            switch self {
            case .ipc: "zmq+ipc://" + NSTemporaryDirectory() + "aesel-\(UUID().uuidString.prefix(8)).sock"
            case .tcp: "zmq+tcp://127.0.0.1:\(freeTCPPort())"
            case .kafka: try kafkaStream()
            case .udp: "udp://127.0.0.1:\(try freeUDPPort())"
            }
        }
    }

    /// A CLyman and a CrazyIvan sharing `stream` and a data folder.
    struct Pair {
        let clyman: TestServer
        let crazyIvan: TestServer

        init(stream: String) throws {
            let folder = NSTemporaryDirectory() + "aesel-split-\(UUID().uuidString)"
            // Bursts of 1000 from one device are over the per-device event rate limit, not tested here.
            clyman = try TestServer("clyman", dataFolder: folder, arguments: ["--stream", stream, "--event-rate", "0"])
            crazyIvan = try TestServer("crazyivan", dataFolder: folder, arguments: ["--stream", stream])
        }

        func stop() {
            crazyIvan.stop()
            clyman.stop()
        }
    }

    @Test("Devices registered with CrazyIvan get every update sent to CLyman, in order, the sender none", arguments: Transport.allCases)
    func fanOut(transport: Transport) async throws {
        let pair = try Pair(stream: try transport.stream())
        defer { pair.stop() }
        let devices = try await pair.crazyIvan.devices("sender", "a", "b", registeredIn: "split")
        let registration = try await pair.crazyIvan.register(devices[0], in: "split")
        // CrazyIvan learned CLyman's UDP endpoint from the stream.
        #expect(registration["event_destination_port"] as? Int == Int(pair.clyman.udpPort))

        let created = try await pair.clyman.request("POST", "/v1/object", body: #"{"objects":[{"scene":"split","name":"thing"}]}"#)
        let object = try #require((created.json["objects"] as? [[String: Any]])?.first?["key"] as? String)
        for device in devices {
            #expect(device.receive() != nil, "the create event reaches every device")
        }
        func send(_ step: Int) {
            devices[0].send(#"{"msg_type":1,"key":"\#(object)","scene":"split","seq":\#(step),"transform":[1,0,0,\#(step)]}"#, to: pair.clyman.udpPort)
        }
        // CLyman reads the sender's session from the store at its first datagram and holds at most 256
        // datagrams behind it: the first 200 may all wait for it, and must come out in order; the rest follow.
        var sequences = Array(repeating: [UInt64](), count: devices.count)
        for steps in [1...200, 201...1000] {
            for step in steps { send(step) }
            for (index, receiver) in devices.enumerated().dropFirst() {
                while let event = receiver.receiveEvent() {
                    sequences[index].append(event.sequence)
                    if event.sequence == steps.upperBound { break }
                }
            }
        }
        for received in sequences.dropFirst() {
            #expect(received == Array(1...1000))
        }
        #expect(devices[0].receive() == nil)
        #expect(try await pair.clyman.request("GET", "/health").status == 200)
        #expect(try await pair.crazyIvan.request("GET", "/health").status == 200)
    }

    @Test("aesel pair: both halves in one process over each stream, with the scene-scoped routes Adrestia forwards", arguments: Transport.allCases)
    func pairProcess(transport: Transport) async throws {
        let server = try TestServer("pair", arguments: ["--stream", try transport.stream(), "--event-rate", "0"])
        defer { server.stop() }
        let devices = try await server.devices("sender", "receiver", registeredIn: "p")
        let created = try await server.request("POST", "/v1/object", body: #"{"objects":[{"scene":"p","name":"thing"}]}"#)
        #expect(created.status == 200)
        let object = try #require((created.json["objects"] as? [[String: Any]])?.first?["key"] as? String)
        #expect(devices[1].receive() != nil)
        devices[0].drain()
        for step in 1...200 {
            devices[0].send(#"{"msg_type":1,"key":"\#(object)","scene":"p","seq":\#(step)}"#, to: server.udpPort)
        }
        var sequences: [UInt64] = []
        while let event = devices[1].receiveEvent() { sequences.append(event.sequence) }
        #expect(sequences == Array(1...200))
        #expect(devices[0].receive() == nil)
        let scoped = try await server.request("POST", "/v1/scene/p/object", body: #"{"objects":[{"name":"scoped"}]}"#)
        #expect(scoped.status == 200)
    }

    /// With Kafka, CLyman hands events to the broker, which keeps them while CrazyIvan is away, so this
    /// runs on the ZeroMQ transports (brokerless, where CLyman itself sees its partner go).
    @Test("Either half survives the other's loss, reports it, and recovers when it returns", arguments: [Transport.ipc, .tcp])
    func partnerLoss(transport: Transport) async throws {
        let pair = try Pair(stream: try transport.stream())
        defer { pair.stop() }
        let devices = try await pair.crazyIvan.devices("sender", "receiver", registeredIn: "loss")
        let event = #"{"msg_type":1,"key":"\#(try await pair.clyman.createObject(in: "loss"))","scene":"loss"}"#
        for device in devices { device.drain() }

        // CrazyIvan dies: CLyman keeps taking events, says it is unhealthy, counts what it cannot hand over.
        try await pair.crazyIvan.restartLater {
            let condition1 = try await eventually { try await pair.clyman.request("GET", "/health").status == 503 }
            #expect(condition1)
            let healthGauge = try await pair.clyman.metrics()["aesel_stream_healthy"]
            #expect(healthGauge == 0)
            devices[0].send(event, to: pair.clyman.udpPort)
            #expect(devices[1].receive() == nil)
            let dropped = try await pair.clyman.metrics()["aesel_stream_dropped_total"] ?? 0
            #expect(dropped >= 1, "the event CrazyIvan could not take is counted")
            let created = try await pair.clyman.request("POST", "/v1/object", body: #"{"objects":[{"scene":"loss","name":"still works"}]}"#)
            #expect(created.status == 200)
        }
        let condition2 = try await eventually { try await pair.clyman.request("GET", "/health").status == 200 }
        #expect(condition2)
        devices[0].send(event, to: pair.clyman.udpPort)
        #expect(devices[1].receive() != nil)

        // CLyman dies: CrazyIvan notices the heartbeats stop, and recovers when CLyman is back.
        try await pair.clyman.restartLater {
            let condition3 = try await eventually { try await pair.crazyIvan.request("GET", "/health").status == 503 }
            #expect(condition3)
        }
        let condition4 = try await eventually { try await pair.crazyIvan.request("GET", "/health").status == 200 }
        #expect(condition4)
        devices[1].drain()
        devices[0].send(event, to: pair.clyman.udpPort)
        #expect(devices[1].receive() != nil)
    }

    /// The broker is the partner CLyman sees: when it dies CLyman reports itself unhealthy and counts the
    /// events the broker never acknowledged; when it returns, events flow again without a restart.
    @Test("Kafka: CLyman survives the broker's loss, reports it, and recovers when it returns")
    func brokerLoss() async throws {
        let broker = try TestBroker()
        defer { broker.stop() }
        let server = try TestServer("pair", arguments: ["--stream", "kafka://\(broker.address)/loss"])
        defer { server.stop() }
        let devices = try await server.devices("sender", "receiver", registeredIn: "loss")
        let event = #"{"msg_type":1,"key":"\#(try await server.createObject(in: "loss"))","scene":"loss"}"#
        for device in devices { device.drain() }
        devices[0].send(event, to: server.udpPort)
        #expect(devices[1].receive() != nil)

        broker.kill()
        let unhealthy = try await eventually { try await server.request("GET", "/health").status == 503 }
        #expect(unhealthy)
        devices[0].send(event, to: server.udpPort)
        // librdkafka gives up on it after message.timeout.ms (5 s) and its delivery report counts it.
        let counted = try await eventually(timeout: .seconds(10)) { (try await server.metrics()["aesel_stream_dropped_total"] ?? 0) >= 1 }
        #expect(counted, "the event the broker never acknowledged is counted")

        try broker.start()
        let healthy = try await eventually(timeout: .seconds(15)) { try await server.request("GET", "/health").status == 200 }
        #expect(healthy)
        devices[1].drain()
        // The consumer rejoins its group on the new broker in a few seconds: send until one comes through.
        let flowing = await eventually(timeout: .seconds(20)) {
            devices[0].send(event, to: server.udpPort)
            return devices[1].receive() != nil
        }
        #expect(flowing)
    }
}
