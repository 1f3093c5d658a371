import AeselTesting
import AeselModel
import AeselWire
import Foundation
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Keepalives (docs/protocol.md) on raw sockets against a real `aesel serve`.
@Suite("Keepalive", .timeLimit(.minutes(2)))
struct KeepaliveTests {
    /// The next datagram and its source port, or nil after the device's receive timeout (300 ms).
    static func receive(_ device: TestDevice) -> (bytes: [UInt8], sourcePort: UInt16)? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        guard let (count, source) = buffer.withUnsafeMutableBytes({ device.socket.receive(into: $0) }) else { return nil }
        return (Array(buffer[0..<count]), UInt16(bigEndian: source.sin_port))
    }

    @Test("A keepalive from any socket is answered from the event port with its nonce, in its format, and counted")
    func answered() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let device = try TestDevice("stranger")
        defer { device.close() }

        device.send(Array(Keepalive.request(nonce: 77, as: .binary, allocator: .init()).readableBytesView), to: server.udpPort)
        let binary = try #require(Self.receive(device))
        #expect(binary.sourcePort == server.udpPort, "the answer comes from the port the device sends to, so it follows the NAT path back")
        #expect(Keepalive.parse(ByteBuffer(bytes: binary.bytes)) == .answer(nonce: 77, format: .binary))

        // JSON as a device in another language might write it.
        device.send(#"{ "msg_type": 555, "nonce": 9007199254 }"#, to: server.udpPort)
        let json = try #require(Self.receive(device))
        #expect(String(decoding: json.bytes, as: UTF8.self) == #"{"msg_type":556,"nonce":9007199254}"#)

        let metrics = try await server.metrics()
        #expect(metrics["aesel_udp_keepalives_total"] == 2)
        #expect(metrics["aesel_udp_received_total"] == 2)
    }

    @Test("Malformed keepalives, and answers sent to the server, are dropped and counted, and get no answer")
    func malformedDropped() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let device = try TestDevice("prober")
        defer { device.close() }
        let datagrams: [[UInt8]] = [
            Array(#"{"msg_type":555}"#.utf8),
            Array(#"{"msg_type":555,"nonce":-1}"#.utf8),
            Array(#"{"msg_type":555,"nonce":1,"scene":"s"}"#.utf8),
            Array(#"{"msg_type":556,"nonce":1}"#.utf8),
            [0xAE, 1, 201, 0],
            [0xAE, 1, 201, 1, 0, 0, 0, 0, 0, 0, 0, 1],
            Array(Keepalive.answer(nonce: 5, as: .binary, allocator: .init()).readableBytesView),
        ]
        for datagram in datagrams { device.send(datagram, to: server.udpPort) }
        #expect(Self.receive(device)?.bytes == nil, "nothing is answered")
        let counted = try await eventually {
            try await server.metrics()[#"aesel_udp_dropped_total{reason="malformed_keepalive"}"#] == Double(datagrams.count)
        }
        #expect(counted)
        #expect(try await server.metrics()["aesel_udp_keepalives_total"] ?? 0 == 0)
        // The port still answers a good one.
        device.send(Array(Keepalive.request(nonce: 6, as: .binary, allocator: .init()).readableBytesView), to: server.udpPort)
        let answer = try #require(Self.receive(device))
        #expect(Keepalive.parse(ByteBuffer(bytes: answer.bytes)) == .answer(nonce: 6, format: .binary))
    }
}
