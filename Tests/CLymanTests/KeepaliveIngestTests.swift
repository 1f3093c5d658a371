import AeselModel
import AeselStore
import AeselWire
@testable import CLyman
import MetricsTestKit
import NIOCore
import NIOEmbedded
import Testing

extension EventIngestHandlerTests {
    @Test("A keepalive is answered in its own format to its source, counted, and never published", arguments: [EventFormat.binary, .json])
    func keepaliveAnswered(format: EventFormat) async throws {
        let harness = try await Harness(scenes: ["s": SceneMemberKeys(objects: ["o"])])
        let request = Keepalive.request(nonce: 41, as: format, allocator: ByteBufferAllocator())
        try await harness.channel.writeInbound(AddressedEnvelope(remoteAddress: Harness.otherDevice, data: request))
        let answer = try #require(try await harness.channel.readOutbound(as: AddressedEnvelope<ByteBuffer>.self))
        #expect(answer.remoteAddress == Harness.otherDevice)
        #expect(Keepalive.parse(answer.data) == .answer(nonce: 41, format: format))
        #expect(answer.data.readableBytes <= request.readableBytes)
        #expect(try harness.metrics.expectCounter("aesel_udp_keepalives_total").totalValue == 1)
        #expect(try harness.metrics.expectCounter("aesel_udp_received_total").totalValue == 1)
        // The event path goes on as before.
        try await harness.send(harness.update("o", in: "s", seq: 1))
        #expect(await harness.published(count: 1).map(\.sequence) == [1])
        try await harness.close()
    }

    @Test("Malformed keepalives and answers sent to CLyman are dropped and counted, and get no answer")
    func keepaliveMalformed() async throws {
        let harness = try await Harness(scenes: ["s": SceneMemberKeys(objects: ["o"])])
        try await harness.send(#"{"msg_type":555}"#)
        try await harness.send(#"{"msg_type":555,"nonce":"x"}"#)
        // An answer bounced back at CLyman (a forged source, say) is not answered: no ping-pong.
        try await harness.channel.writeInbound(AddressedEnvelope(remoteAddress: Harness.device, data: Keepalive.answer(nonce: 1, as: .binary, allocator: ByteBufferAllocator())))
        try await harness.channel.writeInbound(AddressedEnvelope(remoteAddress: Harness.device, data: ByteBuffer(bytes: [0xAE, 1, 201, 0, 1])))
        #expect(try await harness.channel.readOutbound(as: AddressedEnvelope<ByteBuffer>.self) == nil)
        #expect(harness.dropped("malformed_keepalive") == 4)
        #expect(harness.metrics.counters(label: "aesel_udp_keepalives_total").allSatisfy { $0.totalValue == 0 })
        try await harness.close()
    }
}

@Suite("Keepalive rate limit")
struct RateLimiterTests {
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    @Test("A burst passes, the rest waits for the rate; idle time earns no more than a burst")
    func rate() {
        var limiter = RateLimiter(perSecond: 1_000, burst: 10)
        #expect((0..<15).filter { _ in limiter.allow(now: Self.start) }.count == 10)
        // 1,000 a second: one more every millisecond.
        #expect(limiter.allow(now: Self.start + .microseconds(500)) == false)
        #expect(limiter.allow(now: Self.start + .milliseconds(1)) == true)
        #expect(limiter.allow(now: Self.start + .milliseconds(1)) == false)
        let later = Self.start + .seconds(3600)
        #expect((0..<15).filter { _ in limiter.allow(now: later) }.count == 10)
    }
}
