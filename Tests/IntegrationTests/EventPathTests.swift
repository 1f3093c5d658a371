import AeselLocalCluster
import AeselTesting
import AeselModel
import AeselWire
import Foundation
import NIOCore
import Testing

/// The event path end to end, through a real `aesel serve` process, real HTTP and real UDP sockets.
@Suite("Event path", .timeLimit(.minutes(2)))
struct EventPathTests {
    static func moved(_ step: Int) -> Transform {
        Transform(rowMajor: [1, 0, 0, Double(step), 0, 1, 0, 0.5, 0, 0, 1, -Double(step)])
    }

    /// Every change stream back end that runs in one process, each on a fresh endpoint.
    enum Stream: String, CaseIterable, CustomTestStringConvertible {
        case memory, zeroMQInproc, zeroMQIPC, zeroMQTCP, kafka, udp

        var testDescription: String { rawValue }

        var arguments: [String] {
            get throws {
            switch self {
            case .memory: ["--stream", "memory"]
            case .zeroMQInproc: ["--stream", "zmq+inproc://aesel-test"]
            case .zeroMQIPC: ["--stream", "zmq+ipc://" + NSTemporaryDirectory() + "aesel-\(UUID().uuidString.prefix(8)).sock"]
            case .zeroMQTCP: ["--stream", "zmq+tcp://127.0.0.1:\(freeTCPPort())"]
            case .kafka: ["--stream", try kafkaStream()]
            case .udp: ["--stream", "udp://127.0.0.1:\(try freeUDPPort())"]
            }
            }
        }
    }

    @Test("Three devices: the other two get all 1000 updates in order, the sender none", arguments: Stream.allCases)
    func fanOutInOrder(stream: Stream) async throws {
        // A burst of 1000 from one device is over the per-device event rate limit, which is not tested here.
        let server = try TestServer(arguments: try stream.arguments + ["--event-rate", "0"])
        defer { server.stop() }
        let sender = try TestDevice("sender")
        let jsonReceiver = try TestDevice("json-receiver")
        let binaryReceiver = try TestDevice("binary-receiver")
        let registration = try await server.register(sender, in: "arena")
        #expect(registration["err_code"] as? Int == 100)
        #expect(registration["event_destination_port"] as? Int == Int(server.udpPort))
        #expect(registration["event_destination_host"] as? String == "127.0.0.1")
        try await server.register(jsonReceiver, in: "arena")
        try await server.register(binaryReceiver, in: "arena", format: .binary)
        let object = try await server.createObject(in: "arena")
        for device in [sender, jsonReceiver, binaryReceiver] { device.drain() }

        for step in 1...1000 {
            sender.send(#"{"msg_type":1,"key":"\#(object)","scene":"arena","seq":\#(step),"transform":\#(Self.moved(step).rowMajor)}"#, to: server.udpPort)
        }
        for receiver in [jsonReceiver, binaryReceiver] {
            var sequences: [UInt64] = []
            while let event = receiver.receiveEvent() {
                sequences.append(event.sequence)
                #expect(event.objectKey == object)
                #expect(event.transform == Self.moved(Int(event.sequence)))
            }
            #expect(sequences == Array(1...1000))
        }
        #expect(sender.receive() == nil)

        // Reads see the newest transform at once, before the write-behind persister stores it.
        let reply = try await server.request("GET", "/v1/scene/arena/object/\(object)")
        let objects = reply.json["objects"] as? [[String: Any]]
        #expect(objects?.first?["transform"] as? [Double] == Self.moved(1000).rowMajor)
    }

    @Test("/metrics has the relay latency histogram: every event fanned out, arrival to last copy sent", arguments: [Stream.memory, .zeroMQIPC])
    func relayHistogram(stream: Stream) async throws {
        let server = try TestServer(arguments: try stream.arguments + ["--event-rate", "0"])
        defer { server.stop() }
        let devices = try await server.devices("sender", "receiver", registeredIn: "timed")
        let (sender, receiver) = (devices[0], devices[1])
        let object = try await server.createObject(in: "timed")
        receiver.drain()
        let before = try await server.metrics()[#"aesel_relay_seconds_bucket{le="+Inf"}"#] ?? 0
        for step in 1...50 {
            sender.send(#"{"msg_type":1,"key":"\#(object)","scene":"timed","seq":\#(step)}"#, to: server.udpPort)
        }
        #expect(await receiver.receiveEvents(50).count == 50)

        let metrics = try await server.metrics()
        let count = try #require(metrics["aesel_relay_seconds_count"])
        #expect(count - before == 50)
        #expect(metrics[#"aesel_relay_seconds_bucket{le="+Inf"}"#] == count)
        // Cumulative buckets from 10 µs to 100 ms, and +Inf.
        let prefix = #"aesel_relay_seconds_bucket{le=""#
        let buckets = metrics.compactMap { name, value in
            name.hasPrefix(prefix) ? Double(name.dropFirst(prefix.count).dropLast(2)).map { ($0, value) } : nil
        }.sorted { $0.0 < $1.0 }
        #expect(buckets.map(\.0) == [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, .infinity])
        #expect(buckets.map(\.1) == buckets.map(\.1).sorted())
        #expect(try #require(buckets.last).1 > 0)
        let sum = try #require(metrics["aesel_relay_seconds_sum"])
        #expect(sum > 0 && sum / count < 1)
    }

    @Test("Stale and duplicate numbered events are dropped")
    func staleEvents() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let devices = try await server.devices("sender", "receiver", registeredIn: "s")
        let (sender, receiver) = (devices[0], devices[1])
        let object = try await server.createObject(in: "s")
        receiver.drain()
        for sequence in [UInt64(5), 3, 5, 6] {
            sender.send(ObjectEvent(sceneKey: "s", objectKey: object, transform: .identity, sequence: sequence, senderDeviceKey: "sender"), as: .binary, to: server.udpPort)
        }
        #expect(receiver.receiveEvent()?.sequence == 5)
        #expect(receiver.receiveEvent()?.sequence == 6)
        #expect(receiver.receive() == nil)
        #expect(try await server.metrics()[#"aesel_udp_dropped_total{reason="stale"}"#] == 2)
    }

    @Test("A deregistered device stops receiving at once")
    func deregistration() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let devices = try await server.devices("sender", "leaver", "stayer", registeredIn: "room")
        let (sender, leaver, stayer) = (devices[0], devices[1], devices[2])
        let object = try await server.createObject(in: "room")
        for device in devices { device.drain() }
        let event = #"{"msg_type":1,"key":"\#(object)","scene":"room"}"#
        sender.send(event, to: server.udpPort)
        #expect(leaver.receive() != nil)
        #expect(stayer.receive() != nil)

        let reply = try await server.deregister(leaver, from: "room")
        #expect(reply["err_code"] as? Int == 100)
        sender.send(event, to: server.udpPort)
        #expect(stayer.receive() != nil)
        #expect(leaver.receive() == nil)
        let again = try await server.deregister(leaver, from: "room")
        #expect(again["err_code"] as? Int == 102)
    }

    @Test("Bad datagrams are counted and dropped while good traffic keeps flowing")
    func badDatagrams() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let devices = try await server.devices("sender", "receiver", registeredIn: "s")
        let (sender, receiver) = (devices[0], devices[1])
        let object = try await server.createObject(in: "s")
        receiver.drain()
        let good = #"{"msg_type":1,"key":"\#(object)","scene":"s"}"#
        let bad: [[UInt8]] = [
            Array("garbage \u{0}\u{1}".utf8),
            Array(#"{"msg_type":1,"key":"o","sce"#.utf8),
            [UInt8](repeating: UInt8(ascii: "{"), count: 65_000),
            Array(#"{"msg_type":"one","key":"o","scene":"s"}"#.utf8),
            Array(#"{"msg_type":1,"key":"\#(object)","scene":"no-such-scene"}"#.utf8),
            Array(#"{"msg_type":1,"key":"not-an-object","scene":"s"}"#.utf8),
            [0xAE, 1, 1, 0, 0, 0],
        ]
        for datagram in bad {
            sender.send(datagram, to: server.udpPort)
            sender.send(good, to: server.udpPort)
        }
        var received = 0
        while receiver.receive() != nil { received += 1 }
        #expect(received == bad.count)

        let metrics = try await server.metrics()
        #expect(metrics[#"aesel_udp_dropped_total{reason="malformed"}"#] == 3)
        #expect(metrics[#"aesel_udp_dropped_total{reason="oversized"}"#] == 1)
        #expect(metrics[#"aesel_udp_dropped_total{reason="wrong_type"}"#] == 1)
        #expect(metrics[#"aesel_udp_dropped_total{reason="not_in_scene"}"#] == 2)
        #expect(metrics["aesel_udp_received_total"] == Double(bad.count * 2))
        #expect(try await server.request("GET", "/health").json["status"] as? String == "up")
    }

    @Test("A restart keeps scenes, objects, registrations and the last event transform")
    func restart() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let sender = try TestDevice("sender")
        let receiver = try TestDevice("receiver")
        try await server.register(sender, in: "kept")
        try await server.register(receiver, in: "kept", format: .binary)
        let object = try await server.createObject(in: "kept", name: "statue")
        receiver.drain()
        for step in 1...50 {
            sender.send(#"{"msg_type":1,"key":"\#(object)","scene":"kept","transform":\#(Self.moved(step).rowMajor)}"#, to: server.udpPort)
        }
        for _ in 1...50 { #expect(receiver.receive() != nil) }
        // Graceful shutdown flushes what the write-behind persister still holds.
        #expect(try server.restart() == 0)

        let scene = try await server.request("GET", "/v1/scene/kept")
        let devices = (scene.json["scenes"] as? [[String: Any]])?.first?["devices"] as? [[String: Any]]
        #expect(Set(devices?.compactMap { $0["key"] as? String } ?? []) == ["sender", "receiver"])
        let stored = try await server.request("GET", "/v1/scene/kept/object/\(object)")
        let objects = stored.json["objects"] as? [[String: Any]]
        #expect(objects?.first?["name"] as? String == "statue")
        #expect(objects?.first?["transform"] as? [Double] == Self.moved(50).rowMajor)

        // Registrations are back in the fan-out, in the format each device chose.
        sender.send(#"{"msg_type":1,"key":"\#(object)","scene":"kept"}"#, to: server.udpPort)
        #expect(receiver.receive()?.first == BinaryEventFormat.magic)
    }
}
