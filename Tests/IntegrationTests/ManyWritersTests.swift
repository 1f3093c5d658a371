import AeselModel
import AeselTesting
import AeselWire
import Foundation
import NIOCore
import Testing

/// Many devices writing one scene, through a real `aesel serve`, real HTTP and real UDP sockets:
/// per-sender ordering, restarts, exact 64-bit numbers, and the original's keyframe and action updates.
@Suite("Many writers", .timeLimit(.minutes(2)))
struct ManyWritersTests {
    static func at(_ x: Int) -> [Double] {
        Transform(rowMajor: [1, 0, 0, Double(x), 0, 1, 0, 0, 0, 0, 1, 0]).rowMajor
    }

    static func update(_ object: String, in scene: String, seq: UInt64, x: Int, epoch: UInt32? = nil) -> String {
        #"{"msg_type":1,"key":"\#(object)","scene":"\#(scene)","seq":\#(seq),"transform":\#(at(x))"# + (epoch.map { #","epoch":\#($0)}"# } ?? "}")
    }

    /// The next datagram parsed as a JSON object, waiting up to two seconds.
    static func nextJSON(_ device: TestDevice) -> [String: Any]? {
        for _ in 0..<7 {
            if let bytes = device.receive() { return try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] }
        }
        return nil
    }

    @Test("Two devices move one object in turn: every update of both reaches the third, and GET shows the last, also after a restart")
    func twoDevicesOneObject() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let devices = try await server.devices("left", "right", "watcher", registeredIn: "shared")
        let (left, right, watcher) = (devices[0], devices[1], devices[2])
        let object = try await server.createObject(in: "shared")
        for device in devices { device.drain() }

        // Left counts far ahead of right; right's numbers are its own and never stale against left's.
        for turn in 1...20 {
            left.send(Self.update(object, in: "shared", seq: UInt64(1000 + turn), x: 2 * turn - 1), to: server.udpPort)
            #expect(watcher.receiveEvent()?.transform.rowMajor == Self.at(2 * turn - 1))
            right.send(Self.update(object, in: "shared", seq: UInt64(turn), x: 2 * turn), to: server.udpPort)
            #expect(watcher.receiveEvent()?.transform.rowMajor == Self.at(2 * turn))
        }
        // A repeat of right's own number is stale.
        right.send(Self.update(object, in: "shared", seq: 20, x: 999), to: server.udpPort)
        #expect(watcher.receive() == nil)
        #expect(try await server.metrics()[#"aesel_udp_dropped_total{reason="stale"}"#] == 1)

        let path = "/v1/scene/shared/object/\(object)"
        let live = try await server.request("GET", path).json["objects"] as? [[String: Any]]
        #expect(live?.first?["transform"] as? [Double] == Self.at(40), "what the devices last received")
        #expect(try server.restart() == 0)
        let stored = try await server.request("GET", path).json["objects"] as? [[String: Any]]
        #expect(stored?.first?["transform"] as? [Double] == Self.at(40))

        // After the restart nobody's old numbers mute anyone.
        right.send(Self.update(object, in: "shared", seq: 1, x: 41), to: server.udpPort)
        #expect(watcher.receiveEvent()?.transform.rowMajor == Self.at(41))
    }

    @Test("A device that restarts and counts from 1 on the same address is heard at once with a larger epoch")
    func restartedDevice() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let devices = try await server.devices("phone", "watcher", registeredIn: "room")
        let (phone, watcher) = (devices[0], devices[1])
        let objects = [try await server.createObject(in: "room"), try await server.createObject(in: "room")]
        for device in devices { device.drain() }
        for object in objects {
            phone.send(Self.update(object, in: "room", seq: 500, x: 1, epoch: 1_764_640_000), to: server.udpPort)
            #expect(watcher.receiveEvent()?.sequence == 500)
        }
        for object in objects {
            phone.send(Self.update(object, in: "room", seq: 1, x: 2, epoch: 1_764_640_090), to: server.udpPort)
            let event = watcher.receiveEvent()
            #expect(event?.sequence == 1)
            #expect(event?.epoch == 1_764_640_090, "receivers get the epoch, to order by it too")
        }
        #expect(try await server.metrics()[#"aesel_udp_dropped_total{reason="stale"}"#] ?? 0 == 0)
    }

    @Test("A Unix-epoch nanosecond ts and a seq above 2^53 pass through exactly, in JSON and binary")
    func exactNumbers() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let sender = try TestDevice("sender")
        let jsonReceiver = try TestDevice("json")
        let binaryReceiver = try TestDevice("binary")
        try await server.register(sender, in: "clock")
        try await server.register(jsonReceiver, in: "clock")
        try await server.register(binaryReceiver, in: "clock", format: .binary)
        let object = try await server.createObject(in: "clock")
        for device in [sender, jsonReceiver, binaryReceiver] { device.drain() }
        let (seq, ts): (UInt64, UInt64) = (9_007_199_254_740_993, 1_764_640_000_123_456_789)
        sender.send(#"{"msg_type":1,"key":"\#(object)","scene":"clock","seq":\#(seq),"ts":\#(ts)}"#, to: server.udpPort)
        let text = jsonReceiver.receive().map { String(decoding: $0, as: UTF8.self) } ?? ""
        #expect(text.contains(#""seq":\#(seq)"#) && text.contains(#""ts":\#(ts)"#), "JSON digits, not a rounded double: \(text)")
        let binary = binaryReceiver.receiveEvent()
        #expect(binary?.sequence == seq && binary?.timestamp == ts)
        #expect(try await server.metrics()[#"aesel_udp_dropped_total{reason="wrong_type"}"#] ?? 0 == 0)
    }

    @Test("UDP keyframe and action updates (msg_type 16, 20, 24, 28) are stored and fanned out as the original's UDP path labelled them")
    func keyframeAndActionUpdates() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let devices = try await server.devices("animator", "watcher", registeredIn: "stage")
        let (animator, watcher) = (devices[0], devices[1])
        let object = try await server.createObject(in: "stage")
        let created = try await server.request("POST", "/v1/property", body: #"{"properties":[{"scene":"stage","values":[1]}]}"#)
        let property = try #require((created.json["properties"] as? [[String: Any]])?.first?["key"] as? String)
        for device in devices { device.drain() }

        // The original's own netcat example (reference 2.1): a keyframe of an action the object does not have yet.
        let skew = [1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1]
        animator.send(
            #"{"msg_type":16,"key":"\#(object)","scene":"stage","actions":[{"name":"testAction","keyframes":[{"frame":0,"transform":\#(skew)}]}]}"#,
            to: server.udpPort)
        let keyframeEvent = try #require(Self.nextJSON(watcher))
        #expect(keyframeEvent["msg_type"] as? Int == 1)
        #expect(keyframeEvent["key"] as? String == object)
        let sentActions = keyframeEvent["actions"] as? [[String: Any]]
        #expect(sentActions?.first?["name"] as? String == "testAction")
        #expect(((sentActions?.first?["keyframes"] as? [[String: Any]])?.first?["transform"] as? [Double]) == skew.map(Double.init))

        animator.send(#"{"msg_type":20,"key":"\#(object)","scene":"stage","actions":[{"name":"testAction","description":"a skew"}]}"#, to: server.udpPort)
        let actionEvent = try #require(Self.nextJSON(watcher))
        #expect((actionEvent["actions"] as? [[String: Any]])?.first?["description"] as? String == "a skew")

        let stored = try await server.request("GET", "/v1/object/\(object)").json["objects"] as? [[String: Any]]
        let storedAction = (stored?.first?["actions"] as? [[String: Any]])?.first
        #expect(storedAction?["description"] as? String == "a skew")
        #expect((storedAction?["keyframes"] as? [[String: Any]])?.count == 1)

        animator.send(
            #"{"msg_type":24,"key":"\#(property)","scene":"stage","actions":[{"name":"glow","keyframes":[{"frame":4,"values":[{"value":0.25}]}]}]}"#,
            to: server.udpPort)
        let propertyEvent = try #require(Self.nextJSON(watcher))
        #expect(propertyEvent["msg_type"] as? Int == 9)
        animator.send(#"{"msg_type":28,"key":"\#(property)","scene":"stage","actions":[{"name":"glow","description":"pulse"}]}"#, to: server.udpPort)
        #expect(Self.nextJSON(watcher) != nil)
        let storedProperty = try await server.request("GET", "/v1/property/\(property)").json["properties"] as? [[String: Any]]
        let glow = (storedProperty?.first?["actions"] as? [[String: Any]])?.first
        #expect(glow?["description"] as? String == "pulse")
        let values = ((glow?["keyframes"] as? [[String: Any]])?.first?["values"] as? [[String: Any]])?.first
        #expect(values?["value"] as? Double == 0.25)

        // An object outside the scene named, and an update over the action limit, change nothing.
        animator.send(#"{"msg_type":16,"key":"\#(object)","scene":"elsewhere","actions":[{"name":"x","keyframes":[{"frame":1}]}]}"#, to: server.udpPort)
        // 101 actions, one over the limit per record.
        let tooMany = (0...100).map { #"{"name":"a\#($0)"}"# }.joined(separator: ",")
        animator.send(#"{"msg_type":20,"key":"\#(object)","scene":"stage","actions":[\#(tooMany)]}"#, to: server.udpPort)
        #expect(watcher.receive() == nil)
        _ = try await eventually { try await server.metrics()[#"aesel_udp_dropped_total{reason="action_refused"}"#] == 1 }
        let metrics = try await server.metrics()
        #expect(metrics[#"aesel_udp_dropped_total{reason="action_refused"}"#] == 1)
        #expect(metrics[#"aesel_udp_dropped_total{reason="not_in_scene"}"#] == 1)
        let after = try await server.request("GET", "/v1/object/\(object)").json["objects"] as? [[String: Any]]
        #expect((after?.first?["actions"] as? [[String: Any]])?.count == 1)
    }
}
