import AeselAuth
import AeselModel
import AeselTesting
import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import NIOWebSocket
import Synchronization
import Testing

/// WebSocket devices and observers (docs/protocol.md, WebSocket devices) against a real `aesel serve`:
/// real WebSocket connections beside real UDP devices.
@Suite("WebSocket devices", .timeLimit(.minutes(2)))
struct WebSocketDeviceTests {
    static func update(_ object: String, in scene: String, x: Int, seq: UInt64 = 0) -> String {
        let transform = Transform(rowMajor: [1, 0, 0, Double(x), 0, 1, 0, 0, 0, 0, 1, 0]).rowMajor
        return #"{"msg_type":1,"key":"\#(object)","scene":"\#(scene)","seq":\#(seq),"transform":\#(transform)}"#
    }

    static func x(of event: [String: Any]?) -> Double? {
        (event?["transform"] as? [Double]).map { $0[3] }
    }

    @Test("A browser device and a UDP device in one scene: each one's updates reach the other, never the sender")
    func exchange() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let phone = try await server.devices("phone", registeredIn: "room")[0]
        let object = try await server.createObject(in: "room")
        let browser = try await TestWebSocket.connect(server.url, path: "/v1/scene/room/socket?device=browser")
        defer { browser.close() }
        let welcome = await browser.next()?["aesel_socket"] as? [String: Any]
        #expect(welcome?["scene"] as? String == "room")
        #expect(welcome?["device"] as? String == "browser")
        #expect(welcome?["observer"] as? Bool == false)
        phone.drain()

        phone.send(Self.update(object, in: "room", x: 1), to: server.udpPort)
        let fromPhone = await browser.next()
        #expect(fromPhone?["key"] as? String == object)
        #expect(Self.x(of: fromPhone) == 1)

        try await browser.send(Self.update(object, in: "room", x: 2))
        #expect(phone.receiveEvent()?.transform.rowMajor[3] == 2)
        #expect(await browser.next(timeout: .milliseconds(300)) == nil, "not echoed to its sender")
        let stored = try await server.request("GET", "/v1/scene/room/object/\(object)").json["objects"] as? [[String: Any]]
        #expect((stored?.first?["transform"] as? [Double])?[3] == 2, "a browser's update is the object's state")
    }

    @Test("A browser's updates obey the scene, locks and sequence numbers; bad messages are counted drops")
    func rules() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let phone = try await server.devices("phone", registeredIn: "room")[0]
        _ = try await server.devices("other", registeredIn: "elsewhere")
        let object = try await server.createObject(in: "room")
        let browser = try await TestWebSocket.connect(server.url, path: "/v1/scene/room/socket?device=browser")
        defer { browser.close() }
        _ = await browser.next()
        phone.drain()

        try await browser.send(Self.update(object, in: "elsewhere", x: 1))
        try await browser.send("{not json")
        try await browser.send(Self.update(object, in: "room", x: 2, seq: 10))
        try await browser.send(Self.update(object, in: "room", x: 3, seq: 9))
        #expect(phone.receiveEvent()?.transform.rowMajor[3] == 2)
        #expect(phone.receive() == nil, "the stale one is dropped")
        #expect(try await server.request("GET", "/v1/scene/room/object/\(object)/lock?device=phone").status == 200)
        try await browser.send(Self.update(object, in: "room", x: 4, seq: 11))
        #expect(phone.receive() == nil, "the object is the phone's")
        let metrics = try await server.metrics()
        for reason in ["wrong_scene", "stale", "locked"] {
            #expect(metrics[#"aesel_websocket_dropped_total{reason="\#(reason)"}"#] == 1, "\(reason)")
        }
        #expect(metrics.filter { $0.key.hasPrefix("aesel_websocket_dropped_total") }.values.reduce(0, +) == 4, "and one malformed")
        #expect(metrics["aesel_websocket_received_total"] == 5)
        #expect(metrics[#"aesel_udp_dropped_total{reason="locked"}"#] ?? 0 == 0, "counted apart from UDP")
    }

    @Test("An observer receives each object's newest pose, coalesced, and may send nothing; an unknown scene is refused")
    func observer() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let phone = try await server.devices("phone", registeredIn: "room")[0]
        let object = try await server.createObject(in: "room")
        let viewer = try await TestWebSocket.connect(server.url, path: "/v1/scene/room/socket?observe=true")
        defer { viewer.close() }
        #expect((await viewer.next()?["aesel_socket"] as? [String: Any])?["observer"] as? Bool == true)
        phone.drain()

        for x in 1...50 { phone.send(Self.update(object, in: "room", x: x), to: server.udpPort) }
        var seen: [Double] = []
        while seen.last != 50, let event = await viewer.next(), let x = Self.x(of: event) { seen.append(x) }
        #expect(seen.last == 50, "the newest pose arrives")
        #expect(seen.count < 50, "older unsent ones were replaced")
        #expect(seen == seen.sorted(), "in order")
        let metrics = try await server.metrics()
        #expect(metrics[#"aesel_websocket_outbox_dropped_total{reason="replaced"}"#] == Double(50 - seen.count))
        #expect(metrics["aesel_websocket_sent_total"] == Double(seen.count))

        try await viewer.send(Self.update(object, in: "room", x: 99))
        #expect(phone.receive() == nil)
        #expect(try await eventually { try await server.metrics()[#"aesel_websocket_dropped_total{reason="observer"}"#] == 1 })

        await #expect(throws: (any Error).self) { try await TestWebSocket.connect(server.url, path: "/v1/scene/nowhere/socket") }
    }

    @Test("With credentials: a browser's token in the query opens its scene's socket, and no other")
    func credentials() async throws {
        let credentials = TestCredentials.shared
        let server = try TestServer(access: .credentials(credentials))
        defer { server.stop() }
        _ = try await server.devices("phone", registeredIn: "mine")
        _ = try await server.devices("other", registeredIn: "theirs")
        let token = try await credentials.token(role: .application, scenes: ["mine"])
        await #expect(throws: (any Error).self) { try await TestWebSocket.connect(server.url, path: "/v1/scene/mine/socket") }
        await #expect(throws: (any Error).self) { try await TestWebSocket.connect(server.url, path: "/v1/scene/theirs/socket?access_token=\(token)") }
        let browser = try await TestWebSocket.connect(server.url, path: "/v1/scene/mine/socket?access_token=\(token)")
        defer { browser.close() }
        #expect((await browser.next()?["aesel_socket"] as? [String: Any])?["scene"] as? String == "mine")
        let metrics = try await server.metrics()
        #expect(metrics[#"aesel_http_auth_refused_total{reason="missing"}"#] == 1)
    }
}

extension WebSocketDeviceTests {
    @Test("Through Adrestia, with a token in the query: a browser joins the scene's pair; killed, the pair's sockets close with 1012")
    func throughAdrestia() async throws {
        let cluster = try await TestCluster(discovery: .embedded, store: .sqlite, pairs: [("only", "hall")])
        try await cluster.whileRunning {
            #expect(try await cluster.waitUntilHealthy(["only"]))
            try await cluster.createScene("hall-a", region: "hall")
            let phone = try TestDevice("phone")
            let port = try #require(try await cluster.adrestia.register(phone, in: "hall-a")["event_destination_port"] as? Int)
            let object = try await cluster.createObject(in: "hall-a")
            let token = try await TestCredentials.shared.token(role: .application, scenes: ["hall-a"])
            let browser = try await TestWebSocket.connect(cluster.adrestia.url, path: "/v1/scene/hall-a/socket?device=browser&access_token=\(token)")
            defer { browser.close() }
            #expect((await browser.next()?["aesel_socket"] as? [String: Any])?["scene"] as? String == "hall-a")
            phone.drain()

            phone.send(Self.update(object, in: "hall-a", x: 1), to: UInt16(port))
            #expect(Self.x(of: await browser.next()) == 1)
            try await browser.send(Self.update(object, in: "hall-a", x: 2))
            #expect(phone.receiveEvent()?.transform.rowMajor[3] == 2)

            cluster.kill("only")
            #expect(await browser.closeCode() == .unknown(1012))
        }
    }
}

/// A WebSocket client for tests: connects, collects text messages, sends text.
final class TestWebSocket: Sendable {
    private let received = Mutex<[String]>([])
    private let writer = Mutex<WebSocketOutboundWriter?>(nil)
    private let ended = Mutex<Result<WebSocketCloseFrame?, any Error>?>(nil)
    private let task = Mutex<Task<Void, Never>?>(nil)

    /// Connects to `base` + `path` (`http://` becomes `ws://`); throws if the upgrade is refused.
    static func connect(_ base: String, path: String) async throws -> TestWebSocket {
        let socket = TestWebSocket()
        let url = base.replacingOccurrences(of: "http://", with: "ws://").replacingOccurrences(of: "https://", with: "wss://") + path
        let task = Task {
            let result: Result<WebSocketCloseFrame?, any Error>
            do {
                result = .success(
                    try await WebSocketClient.connect(url: url, logger: Logger(label: "test-websocket")) { inbound, outbound, _ in
                        socket.writer.withLock { $0 = outbound }
                        for try await message in inbound.messages(maxSize: 1 << 20) {
                            if case .text(let text) = message { socket.received.withLock { $0.append(text) } }
                        }
                    })
            } catch {
                result = .failure(error)
            }
            socket.ended.withLock { $0 = result }
        }
        socket.task.withLock { $0 = task }
        let opened = await eventually(timeout: .seconds(5)) { socket.writer.withLock { $0 != nil } || socket.ended.withLock { $0 != nil } }
        guard opened, socket.writer.withLock({ $0 != nil }) else {
            if case .failure(let error) = socket.ended.withLock({ $0 }) { throw error }
            throw WebSocketRefused()
        }
        return socket
    }

    struct WebSocketRefused: Error {}

    /// The next text message as a JSON object, waiting up to `timeout`.
    func next(timeout: Duration = .seconds(5)) async -> [String: Any]? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let text = received.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                return (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    func send(_ text: String) async throws {
        try await writer.withLock { $0 }!.write(.text(text))
    }

    func close() {
        task.withLock { $0 }?.cancel()
    }

    /// The close code the server sent, once the connection has ended (within five seconds).
    func closeCode() async -> WebSocketErrorCode? {
        _ = await eventually(timeout: .seconds(5)) { ended.withLock { $0 != nil } }
        guard case .success(let frame) = ended.withLock({ $0 }) else { return nil }
        return frame?.closeCode
    }
}
