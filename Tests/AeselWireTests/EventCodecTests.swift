import AeselModel
import AeselWire
import Foundation
import NIOCore
import Testing

@Suite("Event codecs")
struct EventCodecTests {
    let moved = Transform(rowMajor: [2, 0, 0, 1, 0, 2, 0, 1, 0, 0, 2, 1, 0, 0, 0, 1])

    func decode(_ text: String) throws(EventDecodeError) -> ObjectEvent {
        try EventCodec.decode(ByteBuffer(string: text))
    }

    @Test("JSON round trip in the outbound shape of reference 2.3", arguments: [UInt64(0), 42])
    func jsonRoundTrip(sequence: UInt64) throws {
        let event = ObjectEvent(sceneKey: "scène \"1\"", objectKey: "5b98880a270698496c36e392", transform: moved, sequence: sequence, timestamp: sequence * 1000)
        let encoded = EventCodec.encode(event, as: .json, allocator: ByteBufferAllocator())
        let object = try #require(try JSONSerialization.jsonObject(with: Data(encoded.readableBytesView)) as? [String: Any])
        #expect(object["msg_type"] as? Int == 1)
        #expect(object["assets"] as? [Any] != nil)
        #expect(object["actions"] as? [Any] != nil)
        #expect((object["transform"] as? [Double])?[3] == 1)
        #expect(try EventCodec.decode(encoded) == event)
    }

    @Test("Binary round trip, with the sender's device key")
    func binaryRoundTrip() throws {
        let event = ObjectEvent(sceneKey: "scene", objectKey: "object", transform: moved, sequence: 7, timestamp: 123_456_789, senderDeviceKey: "phone")
        let encoded = EventCodec.encode(event, as: .binary, allocator: ByteBufferAllocator())
        #expect(encoded.getInteger(at: 0, as: UInt8.self) == 0xAE)
        #expect(try EventCodec.decode(encoded) == event)
    }

    @Test("The original's event: ints or doubles, unknown fields and trailing bytes ignored")
    func originalEvent() throws {
        let event = try decode(
            #"{"name":"x","msg_type":1,"frame":3,"key":"k","scene":"s","handles":[{"a":[1,{"b":null}]},true,false],"transform":[2,0,0,1.0,0,2,0,1,0,0,2,1e0,0,0,0,1]} trailing garbage"#
        )
        #expect(event.objectKey == "k")
        #expect(event.sceneKey == "s")
        #expect(event.transform == moved)
        #expect(event.sequence == 0)
    }

    @Test("seq, epoch and ts are exact 64-bit integers: a device clock's Unix-epoch nanoseconds, a seq above 2^53")
    func exactIntegers() throws {
        let event = try decode(#"{"msg_type":1,"key":"k","scene":"s","seq":18446744073709551615,"epoch":4294967295,"ts":1764640000123456789}"#)
        #expect(event.sequence == .max)
        #expect(event.epoch == .max)
        #expect(event.timestamp == 1_764_640_000_123_456_789)
        #expect(try decode(#"{"msg_type":1,"key":"k","scene":"s","seq":9007199254740993}"#).sequence == 9_007_199_254_740_993, "2^53 + 1, which a Double rounds")
        #expect(try decode(#"{"msg_type":1,"key":"k","scene":"s","seq":17.0,"ts":1e3}"#).timestamp == 1000)
        let round = ObjectEvent(sceneKey: "s", objectKey: "k", sequence: .max - 1, epoch: 7, timestamp: 1_764_640_000_123_456_789)
        #expect(try EventCodec.decode(EventCodec.encode(round, as: .json, allocator: ByteBufferAllocator())) == round)
        #expect(try EventCodec.decode(EventCodec.encode(round, as: .binary, allocator: ByteBufferAllocator())) == round)
    }

    @Test("Keyframe and action updates (msg_type 16, 20, 24, 28) carry their actions")
    func actionUpdates() throws {
        let keyframes = try decode(
            #"{"msg_type":16,"key":"k","scene":"s","actions":[{"name":"walk","keyframes":[{"frame":0,"transform":[1,1,0,0,0,1,1,0,0,0,1,1,0,0,0,1]}]}]}"#
        )
        #expect(keyframes.kind == .objectUpdate)
        guard case .objectKeyframes(let actions) = keyframes.actions else { Issue.record("not a keyframe update"); return }
        #expect(actions.map(\.name) == ["walk"])
        #expect(actions.first?.keyframes.first?.transform[row: 0, column: 1] == 1)
        let action = try decode(#"{"msg_type":20,"key":"k","scene":"s","actions":[{"name":"walk","description":"slow","owner":"me"}]}"#)
        guard case .objectActions(let described) = action.actions else { Issue.record("not an action update"); return }
        #expect(described.first?.description == "slow")
        let property = try decode(#"{"msg_type":24,"key":"p","scene":"s","actions":[{"name":"glow","keyframes":[{"frame":3,"values":[{"value":0.5}]}]}]}"#)
        #expect(property.kind == .propertyUpdate)
        guard case .propertyKeyframes(let glowing) = property.actions else { Issue.record("not a property keyframe update"); return }
        #expect(glowing.first?.keyframes.first?.values.first?.value == 0.5)
        guard case .propertyActions = try decode(#"{"msg_type":28,"key":"p","scene":"s","actions":[{"name":"glow","owner":"me"}]}"#).actions else {
            Issue.record("not a property action update"); return
        }
        #expect(try decode(#"{"msg_type":1,"key":"k","scene":"s","actions":[{"name":"walk"}]}"#).actions == nil, "a transform update ignores actions")
    }

    @Test("A short transform keeps the identity's remaining values")
    func shortTransform() throws {
        let event = try decode(#"{"msg_type":1,"key":"k","scene":"s","transform":[1,0,0,5]}"#)
        #expect(event.transform.translation == SIMD3(5, 0, 0))
        #expect(event.transform[row: 3, column: 3] == 1)
    }

    @Test("Escaped strings decode")
    func escapes() throws {
        let event = try decode(#"{"msg_type":1,"key":"a\"b\\c\u00e9\ud83d\ude00","scene":"s\n"}"#)
        #expect(event.objectKey == "a\"b\\cé😀")
        #expect(event.sceneKey == "s\n")
    }

    @Test(
        "Bad datagrams are refused with a reason",
        arguments: [
            ("", EventDecodeError.malformed),
            ("garbage", .malformed),
            (#"{"msg_type":1,"key":"k","scene":"s","transform":[1,0"#, .malformed),
            (#"{"msg_type":"1","key":"k","scene":"s"}"#, .wrongType),
            (#"{"msg_type":1,"key":7,"scene":"s"}"#, .wrongType),
            (#"{"msg_type":1,"key":"k","scene":"s","transform":"identity"}"#, .wrongType),
            (#"{"msg_type":1,"key":"k","scene":"s","transform":[1,"0"]}"#, .wrongType),
            (#"{"msg_type":1,"key":"k","scene":"s","transform":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}"#, .wrongType),
            (#"{"msg_type":1.5,"key":"k","scene":"s"}"#, .wrongType),
            (#"{"msg_type":1,"key":"k","scene":"s","transform":[1e999]}"#, .malformed),
            (#"{"key":"k","scene":"s"}"#, .missingField),
            (#"{"msg_type":1,"scene":"s"}"#, .missingField),
            (#"{"msg_type":1,"key":"k","scene":""}"#, .missingField),
            (#"{"msg_type":77,"key":"k","scene":"s"}"#, .unsupportedMessageType),
            (String(repeating: "[", count: 100), .malformed),
            (#"{"msg_type":1,"x":"#, .malformed),
            (#"{"msg_type":1,"key":"k","scene":"s","seq":18446744073709551616}"#, .wrongType),
            (#"{"msg_type":1,"key":"k","scene":"s","seq":-1}"#, .wrongType),
            (#"{"msg_type":1,"key":"k","scene":"s","ts":"now"}"#, .wrongType),
            (#"{"msg_type":1,"key":"k","scene":"s","ts":1.5}"#, .wrongType),
            (#"{"msg_type":1,"key":"k","scene":"s","seq":1e300}"#, .wrongType),
            (#"{"msg_type":1,"key":"k","scene":"s","epoch":4294967296}"#, .wrongType),
            (#"{"msg_type":16,"key":"k","scene":"s"}"#, .missingField),
            (#"{"msg_type":16,"key":"k","scene":"s","actions":[]}"#, .missingField),
            (#"{"msg_type":16,"key":"k","scene":"s","actions":[{"name":""}]}"#, .missingField),
            (#"{"msg_type":16,"key":"k","scene":"s","actions":[{"name":"a","keyframes":[{"frame":"0"}]}]}"#, .wrongType),
            (#"{"msg_type":20,"key":"k","scene":"s","actions":{"name":"a"}}"#, .wrongType),
            (#"{"msg_type":20,"key":"k","scene":"s","actions":[{"name":"a\u0000"}]}"#, .malformed),
        ]
    )
    func refused(text: String, reason: EventDecodeError) {
        #expect(throws: reason) { try decode(text) }
    }

    @Test("Oversized and truncated datagrams are refused")
    func sizes() throws {
        let huge = ByteBuffer(repeating: UInt8(ascii: " "), count: EventCodec.maximumDatagramSize + 1)
        #expect(throws: EventDecodeError.oversized) { try EventCodec.decode(huge) }
        let event = ObjectEvent(sceneKey: "scene", objectKey: "object", transform: moved, sequence: 1)
        let binary = EventCodec.encode(event, as: .binary, allocator: ByteBufferAllocator())
        for length in [1, 10, 25, binary.readableBytes - 1] {
            #expect(throws: EventDecodeError.malformed) { try EventCodec.decode(binary.getSlice(at: 0, length: length)!) }
        }
    }

    @Test("The original's CLyman-to-CrazyIvan framing: scene, newline, JSON")
    func udpStreamFraming() throws {
        var event = ObjectEvent(sceneKey: "s1", objectKey: "o", transform: moved, sequence: 3)
        event.source = try SocketAddress(ipAddress: "127.0.0.1", port: 4000)
        var buffer = ByteBufferAllocator().buffer(capacity: 512)
        UDPStreamFraming.encode(.update(event), into: &buffer)
        #expect(String(buffer: buffer).hasPrefix("s1\n{\"msg_type\":1"))
        #expect(try UDPStreamFraming.decode(buffer) == .update(event))

        // From an original CLyman (no `src`): forwarded verbatim, as the original CrazyIvan did.
        let original = ByteBuffer(string: "s1\n{\"msg_type\":1,\"key\":\"o\",\"scene\":\"s1\",\"transform\":[1,0,0,0]}")
        guard case .transaction(let transaction) = try UDPStreamFraming.decode(original) else {
            Issue.record("expected a verbatim event")
            return
        }
        #expect(transaction.sceneKey == "s1")
        #expect(String(buffer: transaction.json) == "{\"msg_type\":1,\"key\":\"o\",\"scene\":\"s1\",\"transform\":[1,0,0,0]}")
        #expect(throws: EventDecodeError.malformed) { try UDPStreamFraming.decode(ByteBuffer(string: "no newline")) }
        #expect(throws: EventDecodeError.malformed) { try UDPStreamFraming.decode(ByteBuffer(string: "\n{}")) }
    }

    @Test("A scene-moved notice round-trips, and the event path refuses it as an event")
    func sceneMovedNotice() throws {
        let notice = SceneMovedNotice.encode(sceneKey: "lobby", allocator: ByteBufferAllocator())
        #expect(SceneMovedNotice.sceneKey(in: notice) == "lobby")
        #expect(throws: EventDecodeError.unsupportedMessageType) { try EventCodec.decode(notice) }
        let event = EventCodec.encode(ObjectEvent(sceneKey: "lobby", objectKey: "o"), as: .binary, allocator: ByteBufferAllocator())
        #expect(SceneMovedNotice.sceneKey(in: event) == nil)
        #expect(SceneMovedNotice.sceneKey(in: ByteBuffer(bytes: [0xAE, 1, 200])) == nil, "truncated")
    }
}
