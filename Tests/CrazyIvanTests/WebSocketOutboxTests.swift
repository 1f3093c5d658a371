import AeselModel
@testable import CrazyIvan
import NIOCore
import Testing

@Suite("WebSocket outbox")
struct WebSocketOutboxTests {
    static func message(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }
    static func pose(_ object: String) -> WebSocketOutbox.Key { .init(kind: .objectUpdate, objectKey: object) }

    @Test("An object's newer pose takes the place of its unsent older one, at the end; other messages stay in order")
    func newestReplaces() async {
        let outbox = WebSocketOutbox(sceneKey: "s", deviceKey: "d", isObserver: true)
        #expect(outbox.enqueue(Self.message("a1"), replacing: Self.pose("a")) == .queued)
        #expect(outbox.enqueue(Self.message("created"), replacing: nil) == .queued)
        #expect(outbox.enqueue(Self.message("b1"), replacing: Self.pose("b")) == .queued)
        #expect(outbox.enqueue(Self.message("a2"), replacing: Self.pose("a")) == .replaced)
        #expect(outbox.enqueue(Self.message("edit"), replacing: nil) == .queued)
        let sent = await outbox.next()?.map { String(buffer: $0) }
        #expect(sent == ["created", "b1", "a2", "edit"])
        #expect(outbox.enqueue(Self.message("a3"), replacing: Self.pose("a")) == .queued, "nothing unsent to replace")
    }

    @Test("Past its capacity the outbox closes as too slow; a closed one takes nothing and ends next()")
    func tooSlow() async {
        let outbox = WebSocketOutbox(sceneKey: "s", deviceKey: "d", isObserver: false)
        for index in 0..<WebSocketOutbox.capacity {
            #expect(outbox.enqueue(Self.message("\(index)"), replacing: Self.pose("\(index)")) == .queued)
        }
        #expect(outbox.enqueue(Self.message("one more"), replacing: nil) == .tooSlow)
        #expect(outbox.closedAsTooSlow)
        #expect(outbox.enqueue(Self.message("after"), replacing: nil) == .closed)
        #expect(await outbox.next() == nil)
    }

    @Test("A waiting writer wakes for the next message, and for close")
    func wakes() async {
        let outbox = WebSocketOutbox(sceneKey: "s", deviceKey: "d", isObserver: false)
        async let first = outbox.next()
        try? await Task.sleep(for: .milliseconds(50))
        _ = outbox.enqueue(Self.message("x"), replacing: nil)
        #expect(await first?.map { String(buffer: $0) } == ["x"])
        async let second = outbox.next()
        try? await Task.sleep(for: .milliseconds(50))
        outbox.close()
        #expect(await second == nil)
    }
}
