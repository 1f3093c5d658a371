import AeselModel
import AeselTesting
import Foundation
import Testing

/// Each device's event rate on a real server: a flooding device loses what is over its allowance, counted,
/// and the other devices of the scene are not held back by it.
@Suite("Event rate limits", .timeLimit(.minutes(2)))
struct EventRateLimitTests {
    static func update(_ object: String, sequence: Int) -> String {
        #"{"msg_type":1,"key":"\#(object)","scene":"s","transform":[1,0,0,\#(sequence),0,1,0,0,0,0,1,0,0,0,0,1],"seq":\#(sequence)}"#
    }

    @Test("A flood over --event-rate is dropped as rate_limited, per device, sealed or not", arguments: ["plaintext", "sealed"])
    func floodIsLimitedPerDevice(security: String) async throws {
        let server = try TestServer(arguments: ["--event-security", security, "--event-rate", "20", "--event-burst", "10"])
        defer { server.stop() }
        let flooder = try TestDevice("flooder")
        let calm = try TestDevice("calm")
        let receiver = try TestDevice("receiver")
        for device in [flooder, calm, receiver] { try await server.register(device, in: "s") }
        let object = try await server.createObject(in: "s")
        let other = try await server.createObject(in: "s")
        receiver.drain()

        for sequence in 1...300 { flooder.send(Self.update(object, sequence: sequence), to: server.udpPort) }
        calm.send(Self.update(other, sequence: 1), to: server.udpPort)
        var received: [String] = []
        while let event = receiver.receiveEvent() { received.append(event.objectKey) }
        let fromFlooder = received.filter { $0 == object }.count
        // The burst of 10, plus what 20 a second allows while the flood is sent.
        #expect((10...40).contains(fromFlooder), "\(fromFlooder) of the flood passed")
        #expect(received.contains(other), "the calm device's event passed")
        let limited = try await server.metrics()[#"aesel_udp_dropped_total{reason="rate_limited"}"#] ?? 0
        #expect(Int(limited) == 300 - fromFlooder)
    }
}
