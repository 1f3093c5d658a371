import AeselModel
import AeselWire
import NIOCore
import Testing

@Suite("Keepalive datagrams")
struct KeepaliveTests {
    static func parse(_ text: String) -> Keepalive.Message? {
        Keepalive.parse(ByteBuffer(string: text))
    }

    @Test("Requests and answers round-trip in both formats; an answer is as long as its request", arguments: [EventFormat.binary, .json])
    func roundTrip(format: EventFormat) {
        for nonce: UInt64 in [0, 7, 1 << 40, .max] {
            let request = Keepalive.request(nonce: nonce, as: format, allocator: ByteBufferAllocator())
            let answer = Keepalive.answer(nonce: nonce, as: format, allocator: ByteBufferAllocator())
            #expect(Keepalive.parse(request) == .request(nonce: nonce, format: format))
            #expect(Keepalive.parse(answer) == .answer(nonce: nonce, format: format))
            #expect(answer.readableBytes == request.readableBytes)
        }
        let binary = Keepalive.request(nonce: 1, as: .binary, allocator: ByteBufferAllocator())
        #expect(Array(binary.readableBytesView) == [0xAE, 1, 201, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        #expect(String(buffer: Keepalive.answer(nonce: 12, as: .json, allocator: ByteBufferAllocator())) == #"{"msg_type":556,"nonce":12}"#)
    }

    @Test("JSON as other languages write it: any member order and whitespace")
    func jsonVariants() {
        #expect(Self.parse(#"{ "nonce" : 5 , "msg_type" : 555 }"#) == .request(nonce: 5, format: .json))
        #expect(Self.parse("{\"msg_type\":555,\n\t\"nonce\":9}\n") == .request(nonce: 9, format: .json))
        #expect(Self.parse(#"{"nonce":3,"msg_type":556}"#) == .answer(nonce: 3, format: .json))
    }

    @Test(
        "Keepalives of the wrong shape are malformed",
        arguments: [
            #"{"msg_type":555}"#, #"{"msg_type":555,"nonce":-1}"#, #"{"msg_type":555,"nonce":"1"}"#, #"{"msg_type":555,"nonce":1.5}"#,
            #"{"msg_type":555,"nonce":1e3}"#, #"{"msg_type":555,"nonce":18446744073709551616}"#, #"{"msg_type":555,"nonce":1,"scene":"s"}"#,
            #"{"msg_type":555,"nonce":1,"nonce":2}"#, #"{"msg_type":555,"msg_type":555,"nonce":1}"#, #"{"msg_type":555,"nonce":1} trailing"#,
            #"{"msg_type":555,"non"#, #"{"msg_type":555,"nonce":1"#, #"{"msg_type":555,"no\nce":1}"#,
        ]
    )
    func malformedJSON(text: String) {
        #expect(Self.parse(text) == .malformed)
    }

    @Test("Binary keepalives of the wrong length, version or flags are malformed")
    func malformedBinary() {
        let good: [UInt8] = [0xAE, 1, 201, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        let wrong: [[UInt8]] = [Array(good.dropLast()), good + [0], [0xAE, 2] + good.dropFirst(2), Array(good.prefix(3)) + [1] + good.dropFirst(4), [0xAE, 1, 202, 0]]
        for bytes in wrong {
            #expect(Keepalive.parse(ByteBuffer(bytes: bytes)) == .malformed, "\(bytes)")
        }
    }

    @Test("Events, notices and other datagrams are no keepalives, and a keepalive is no event")
    func notKeepalives() throws {
        let event = ObjectEvent(sceneKey: "s", objectKey: "o", transform: .identity, sequence: 555)
        for format in [EventFormat.binary, .json] {
            #expect(Keepalive.parse(EventCodec.encode(event, as: format, allocator: ByteBufferAllocator())) == nil)
        }
        #expect(Keepalive.parse(SceneMovedNotice.encode(sceneKey: "s", allocator: ByteBufferAllocator())) == nil)
        for text in ["", "{", "{}", "kill", #"{"msg_type":1,"key":"o","scene":"s"}"#, #"{"key":"o","msg_type":555,"nonce":1}"#, #"{"msg_type":"555","nonce":1}"#, #"{"nonce":1}"#] {
            #expect(Self.parse(text) == nil, "\(text)")
        }
        for format in [EventFormat.binary, .json] {
            let request = Keepalive.request(nonce: 1, as: format, allocator: ByteBufferAllocator())
            #expect(throws: EventDecodeError.self) { try EventCodec.decode(request) }
        }
    }
}
