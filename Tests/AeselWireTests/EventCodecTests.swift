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
