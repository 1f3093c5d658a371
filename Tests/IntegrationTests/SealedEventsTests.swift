import AeselModel
import AeselSealing
import AeselTesting
import AeselWire
import Foundation
import NIOCore
import Testing

/// Sealed events through a real `aesel serve --event-security sealed` and real sockets: what a device
/// sends sealed reaches the others sealed for them, and nothing else gets through.
@Suite("Sealed events", .timeLimit(.minutes(3)))
struct SealedEventsTests {
    static func update(_ object: String, in scene: String, x: Double, sequence: UInt64) -> String {
        #"{"msg_type":1,"key":"\#(object)","scene":"\#(scene)","transform":[1,0,0,\#(x),0,1,0,0,0,0,1,0,0,0,0,1],"seq":\#(sequence)}"#
    }

    static func sealed(_ text: String, with session: DeviceSession) -> [UInt8] {
        Array(session.seal(ByteBuffer(string: text)).readableBytesView)
    }

    static func dropped(_ server: TestServer, _ reason: String) async throws -> Double {
        try await server.metrics()[#"aesel_udp_dropped_total{reason="\#(reason)"}"#] ?? 0
    }

    @Test("Registration issues a session key; an event sealed with it reaches the other device sealed for that device")
    func sealedRoundTrip() async throws {
        let server = try TestServer(arguments: ["--event-security", "sealed"])
        defer { server.stop() }
        let sender = try TestDevice("sender")
        let receiver = try TestDevice("receiver")
        let answer = try await server.register(sender, in: "s")
        #expect(answer["event_security"] as? String == "sealed")
        #expect(Data(base64Encoded: answer["session_key"] as? String ?? "")?.count == 32)
        try await server.register(receiver, in: "s")
        let object = try await server.createObject(in: "s")
        receiver.drain()

        sender.send(Self.update(object, in: "s", x: 2, sequence: 1), to: server.udpPort)
        let raw = try #require(receiver.socket.receiveRaw())
        #expect(raw.first == SealedDatagram.magic)
        #expect(!String(decoding: raw, as: UTF8.self).contains(object), "the object key is not in the clear")
        let event = try #require(try? EventCodec.decode(ByteBuffer(bytes: receiver.sessions.open(raw))))
        #expect(event.objectKey == object && event.transform.translation.x == 2)
        // The HTTP API sees the sealed event's transform.
        let stored = try await server.request("GET", "/v1/object/\(object)")
        #expect(((stored.json["objects"] as? [[String: Any]])?.first?["transform"] as? [Double])?[3] == 2)
        // A transaction's event is sealed too.
        _ = try await server.request("POST", "/v1/object/\(object)", body: #"{"objects":[{"name":"renamed"}]}"#)
        let transaction = try #require(receiver.socket.receiveRaw())
        #expect(transaction.first == SealedDatagram.magic)
        #expect(String(decoding: receiver.sessions.open(transaction), as: UTF8.self).contains("renamed"))
    }

    @Test("Plaintext, replayed, tampered, unknown-key, wrong-key and cross-scene datagrams are dropped by reason, never fanned out")
    func forgeriesAreDropped() async throws {
        let server = try TestServer(arguments: ["--event-security", "sealed"])
        defer { server.stop() }
        let devices = try await server.devices("sender", "receiver", registeredIn: "s")
        let (sender, receiver) = (devices[0], devices[1])
        let other = try TestDevice("other")
        try await server.register(other, in: "t")
        let object = try await server.createObject(in: "s")
        receiver.drain()
        let session = try #require(sender.sessions.latest)

        let genuine = Self.sealed(Self.update(object, in: "s", x: 1, sequence: 1), with: session)
        // A fresh counter: a tampered copy of the genuine datagram would be dropped as a replay first.
        var tampered = Self.sealed(Self.update(object, in: "s", x: 9, sequence: 6), with: session)
        tampered[tampered.count / 2] ^= 0x01
        let unknownKey = DeviceSession(EventSessionKey.generate(), sceneKey: "s", deviceKey: "sender")
        let wrongSecret = DeviceSession(EventSessionKey(id: session.keyID, secret: .init(repeating: 7, count: 32)), sceneKey: "s", deviceKey: "sender")
        let otherSession = try #require(other.sessions.latest)
        let attempts: [(datagram: [UInt8], reason: String)] = [
            (Array(Self.update(object, in: "s", x: 9, sequence: 2).utf8), "not_sealed"),
            (tampered, "not_authentic"),
            (Self.sealed(Self.update(object, in: "s", x: 9, sequence: 3), with: unknownKey), "unknown_session"),
            (Self.sealed(Self.update(object, in: "s", x: 9, sequence: 4), with: wrongSecret), "not_authentic"),
            // Authentic for its own scene, but naming another: a device of t cannot move s's objects.
            (Self.sealed(Self.update(object, in: "s", x: 9, sequence: 5), with: otherSession), "wrong_scene"),
        ]
        sender.socket.sendRaw(genuine, to: server.udpPort)
        #expect(receiver.receiveEvent()?.transform.translation.x == 1)
        for attempt in attempts { other.socket.sendRaw(attempt.datagram, to: server.udpPort) }
        // The genuine datagram again, from anyone, is a replay.
        other.socket.sendRaw(genuine, to: server.udpPort)
        #expect(receiver.receive() == nil, "nothing but the genuine event got through")
        #expect(try await Self.dropped(server, "not_sealed") == 1)
        #expect(try await Self.dropped(server, "not_authentic") == 2)
        #expect(try await Self.dropped(server, "unknown_session") == 1)
        #expect(try await Self.dropped(server, "wrong_scene") == 1)
        #expect(try await Self.dropped(server, "replayed") == 1)
        let stored = try await server.request("GET", "/v1/object/\(object)")
        #expect(((stored.json["objects"] as? [[String: Any]])?.first?["transform"] as? [Double])?[3] == 1)
    }

    @Test("Registering again rotates the key: the old one stops working at once, the new one works, and keys survive a restart")
    func rotationAndRestart() async throws {
        let server = try TestServer(arguments: ["--event-security", "sealed"])
        defer { server.stop() }
        let devices = try await server.devices("sender", "receiver", registeredIn: "s")
        let (sender, receiver) = (devices[0], devices[1])
        let object = try await server.createObject(in: "s")
        receiver.drain()
        let old = try #require(sender.sessions.latest)
        try await server.register(sender, in: "s")
        let new = try #require(sender.sessions.latest)
        #expect(new.keyID != old.keyID)
        sender.socket.sendRaw(Self.sealed(Self.update(object, in: "s", x: 1, sequence: 1), with: old), to: server.udpPort)
        #expect(receiver.receive() == nil)
        #expect(try await Self.dropped(server, "unknown_session") == 1)
        sender.send(Self.update(object, in: "s", x: 2, sequence: 2), to: server.udpPort)
        #expect(receiver.receiveEvent()?.transform.translation.x == 2)

        // The store keeps the keys: after a restart the first datagram waits for its session, not lost.
        _ = try server.restart()
        sender.send(Self.update(object, in: "s", x: 3, sequence: 3), to: server.udpPort)
        #expect(receiver.receiveEvent()?.transform.translation.x == 3)
    }
}

/// The original's AES-256-CBC mode (reference 2.5) through a real server: what its devices send and
/// expect, byte for byte.
@Suite("The original's encrypted events", .timeLimit(.minutes(2)))
struct OriginalEncryptedEventsTests {
    static let toPair = OriginalEventCipher.Secret(key: String(repeating: "0123456789abcdef", count: 4), iv: "fedcba9876543210fedcba9876543210", password: "pw-in", salt: "salt-in")
    static let toDevice = OriginalEventCipher.Secret(key: String(repeating: "ABCDEFGHIJKLMNOP", count: 4), iv: "PONMLKJIHGFEDCBAPONMLKJIHGFEDCBA", password: "pw-out", salt: "salt-out")

    @Test("Registration hands out the deployment's keys; events go in and out as base64 of AES-256-CBC, and plaintext is dropped")
    func roundTrip() async throws {
        let config = NSTemporaryDirectory() + "aesel-aes-\(UUID().uuidString).json"
        let secrets: [String: Any] = ["event": ["aes": [
            "in": ["key": Self.toPair.key, "iv": Self.toPair.iv, "password": Self.toPair.password, "salt": Self.toPair.salt],
            "out": ["key": Self.toDevice.key, "iv": Self.toDevice.iv, "password": Self.toDevice.password, "salt": Self.toDevice.salt],
        ]]]
        try JSONSerialization.data(withJSONObject: secrets).write(to: URL(fileURLWithPath: config))
        defer { try? FileManager.default.removeItem(atPath: config) }
        let server = try TestServer(arguments: ["--event-security", "aes-cbc", "--config", config])
        defer { server.stop() }
        let sender = try TestDevice("sender")
        let receiver = try TestDevice("receiver")
        let answer = try await server.register(sender, in: "s")
        #expect(answer["event_security"] as? String == "aes-cbc")
        #expect(answer["encryption_key"] as? String == Self.toPair.key && answer["encryption_salt"] as? String == "salt-in")
        #expect(answer["decryption_iv"] as? String == Self.toDevice.iv && answer["decryption_password"] as? String == "pw-out")
        try await server.register(receiver, in: "s")
        let object = try await server.createObject(in: "s")
        receiver.drain()

        let up = try OriginalEventCipher(Self.toPair)
        let down = try OriginalEventCipher(Self.toDevice)
        // Long enough for the base64 to be cut into 72-character lines, as Poco writes it.
        let event = #"{"msg_type":1,"key":"\#(object)","scene":"s","transform":[1,0,0,4.5,0,1,0,0,0,0,1,0,0,0,0,1],"assets":[],"actions":[]}"#
        let datagram = up.encrypt(ByteBuffer(string: event), allocator: .init())
        #expect(String(buffer: datagram).contains("\r\n"))
        sender.socket.sendRaw(Array(datagram.readableBytesView), to: server.udpPort)
        let raw = try #require(receiver.socket.receiveRaw())
        let plaintext = try #require(down.decrypt(ByteBuffer(bytes: raw), allocator: .init()))
        #expect(try EventCodec.decode(plaintext).transform.translation.x == 4.5)

        sender.socket.sendRaw(Array(event.utf8), to: server.udpPort)
        #expect(receiver.socket.receiveRaw() == nil)
        #expect(try await server.metrics()[#"aesel_udp_dropped_total{reason="not_decrypted"}"#] == 1)
    }
}
