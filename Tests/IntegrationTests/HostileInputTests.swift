import AeselLocalCluster
import AeselTesting
import AeselModel
import AeselWire
import Foundation
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What an attacker can send, through a real `aesel serve` process and real sockets: nothing traps,
/// writes across scenes, poisons ordering, grows memory or holds a connection.
@Suite("Hostile input", .timeLimit(.minutes(3)))
struct HostileInputTests {
    static func moved(_ x: Double) -> Transform {
        Transform(rowMajor: [1, 0, 0, x, 0, 1, 0, 0, 0, 0, 1, 0])
    }

    static func update(_ object: String, in scene: String, x: Double, sequence: UInt64? = nil) -> String {
        let seq = sequence.map { #","seq":\#($0)"# } ?? ""
        return #"{"msg_type":1,"key":"\#(object)","scene":"\#(scene)","transform":\#(moved(x).rowMajor)\#(seq)}"#
    }

    static func storedX(_ server: TestServer, _ object: String) async throws -> Double? {
        let reply = try await server.request("GET", "/v1/object/\(object)")
        return ((reply.json["objects"] as? [[String: Any]])?.first?["transform"] as? [Double])?[3]
    }

    @Test("Datagrams that once trapped (a src port out of range, 64-bit extremes) are dropped, and the server stays up")
    func formerTraps() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let devices = try await server.devices("sender", "receiver", registeredIn: "s")
        let object = try await server.createObject(in: "s")
        devices[1].drain()
        let datagrams: [[UInt8]] = [
            Array(#"{"src":"127.0.0.1:65536"}"#.utf8),
            Array(#"{"src":"127.0.0.1:-1"}"#.utf8),
            Array(#"{"src":"[::1]:70000"}"#.utf8),
            Array(#"{"msg_type":1,"key":"\#(object)","scene":"s","src":"127.0.0.1:99999999999999999999"}"#.utf8),
            Array(#"{"msg_type":1,"key":"\#(object)","scene":"s","seq":1e400,"ts":-1}"#.utf8),
            Array(EventCodec.encode(ObjectEvent(sceneKey: "s", objectKey: object, sequence: .max, timestamp: .max), as: .binary, allocator: .init()).readableBytesView),
        ]
        for datagram in datagrams { devices[0].send(datagram, to: server.udpPort) }
        // The `src` field is the internal stream's: on the device port it is ignored, not trusted.
        var received = 0
        while devices[1].receive() != nil { received += 1 }
        #expect(received == 2, "the event with an ignored src and the binary one with the highest numbers")
        #expect(try await server.request("GET", "/health").status == 200)
        devices[0].send(Self.update(object, in: "s", x: 1, sequence: 7), to: server.udpPort)
        #expect(devices[1].receiveEvent()?.sequence == 7)
    }

    @Test("An event acts only inside its own scene: another scene's object, or a scene that does not exist, gets nothing")
    func eventsStayInTheirScene() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let inA = try await server.devices("a-sender", "a-receiver", registeredIn: "A")
        let inB = try await server.devices("b-receiver", registeredIn: "B")
        let objectA = try await server.createObject(in: "A")
        let objectB = try await server.createObject(in: "B")
        for device in inA + inB { device.drain() }

        inA[0].send(Self.update(objectB, in: "A", x: 9), to: server.udpPort)
        inA[0].send(Self.update(objectB, in: "no-such-scene", x: 9), to: server.udpPort)
        inA[0].send(Self.update(objectA, in: "B", x: 9), to: server.udpPort)
        inA[0].send(Self.update("not-an-object", in: "A", x: 9), to: server.udpPort)
        #expect(inA[1].receive() == nil)
        #expect(inB[0].receive() == nil)
        #expect(try await server.metrics()[#"aesel_udp_dropped_total{reason="not_in_scene"}"#] == 4)

        inA[0].send(Self.update(objectA, in: "A", x: 3), to: server.udpPort)
        #expect(inA[1].receiveEvent()?.transform == Self.moved(3))
        #expect(inB[0].receive() == nil)
        // Nothing was written across scenes, in memory or in the store (after a graceful restart).
        #expect(try await Self.storedX(server, objectB) == 0)
        #expect(try server.restart() == 0)
        #expect(try await Self.storedX(server, objectB) == 0)
        #expect(try await Self.storedX(server, objectA) == 3)
    }

    @Test("An object created after its scene was loaded takes events at once")
    func newObjectInLoadedScene() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let devices = try await server.devices("sender", "receiver", registeredIn: "s")
        let first = try await server.createObject(in: "s")
        devices[1].drain()
        devices[0].send(Self.update(first, in: "s", x: 1), to: server.udpPort)
        #expect(devices[1].receive() != nil)
        let second = try await server.createObject(in: "s")
        devices[1].drain()
        devices[0].send(Self.update(second, in: "s", x: 2), to: server.udpPort)
        #expect(devices[1].receiveEvent()?.objectKey == second)
        // Deleted: its events act no more.
        #expect(try await server.request("DELETE", "/v1/object/\(second)").status == 200)
        devices[1].drain()
        devices[0].send(Self.update(second, in: "s", x: 3), to: server.udpPort)
        #expect(devices[1].receive() == nil)
    }

    @Test("Ordering cannot be poisoned: huge numbers, and numbers on dropped datagrams, do not mute an object")
    func orderingCannotBePoisoned() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let devices = try await server.devices("sender", "receiver", "owner", registeredIn: "s")
        let (sender, receiver, owner) = (devices[0], devices[1], devices[2])
        let object = try await server.createObject(in: "s")
        #expect(try await server.request("PUT", "/v1/scene/t", body: #"{"scenes":[{"name":"t"}]}"#).status == 200)
        let other = try await server.createObject(in: "t")
        for device in devices { device.drain() }

        sender.send(Self.update(object, in: "s", x: 1, sequence: 8_999_999_999_999_999), to: server.udpPort)
        sender.send(ObjectEvent(sceneKey: "s", objectKey: object, transform: Self.moved(2), sequence: .max, senderDeviceKey: "sender"), as: .binary, to: server.udpPort)
        #expect(receiver.receive() != nil)
        #expect(receiver.receive() != nil)
        for step in 1...3 {
            sender.send(Self.update(object, in: "s", x: Double(10 + step), sequence: UInt64(step)), to: server.udpPort)
        }
        var sequences: [UInt64] = []
        while let event = receiver.receiveEvent() { sequences.append(event.sequence) }
        #expect(sequences == [1, 2, 3], "a sender counting from 1 again is heard at once")
        #expect(try await Self.storedX(server, object) == 13)

        // A datagram dropped for naming the wrong scene, or for a lock, does not advance the object's number.
        sender.send(Self.update(object, in: "t", x: 20, sequence: 500), to: server.udpPort)
        sender.send(Self.update(other, in: "s", x: 20, sequence: 500), to: server.udpPort)
        #expect(try await server.request("GET", "/v1/object/\(object)/lock?device=owner").status == 200)
        receiver.drain()
        sender.send(Self.update(object, in: "s", x: 21, sequence: 600), to: server.udpPort)
        owner.send(Self.update(object, in: "s", x: 22, sequence: 4), to: server.udpPort)
        #expect(receiver.receiveEvent()?.sequence == 4)
        #expect(receiver.receive() == nil)
        let metrics = try await server.metrics()
        #expect(metrics[#"aesel_udp_dropped_total{reason="locked"}"#] == 1)
        #expect(metrics[#"aesel_udp_dropped_total{reason="not_in_scene"}"#] == 2)
        #expect(metrics[#"aesel_udp_dropped_total{reason="stale"}"#] == 0)
        #expect(try server.restart() == 0)
        #expect(try await Self.storedX(server, object) == 22)
    }

    @Test("Memory stays flat under a flood of made-up object and scene keys")
    func boundedMemory() async throws {
        // No per-device event rate limit, or it would drop the flood before it reaches the caches.
        let server = try TestServer(arguments: ["--event-rate", "0"])
        defer { server.stop() }
        let devices = try await server.devices("sender", "receiver", registeredIn: "s")
        let object = try await server.createObject(in: "s")
        devices[1].drain()
        let sender = devices[0]
        func flood(_ round: Int) async throws {
            for index in 0..<40_000 {
                let key = "\(round)-\(index)-\(UInt32.random(in: 0...UInt32.max))"
                sender.send(Self.update(index % 2 == 0 ? key : object, in: index % 2 == 0 ? "s" : key, x: 0, sequence: UInt64(index + 1)), to: server.udpPort)
                if index % 500 == 0 { try await Task.sleep(for: .milliseconds(5)) }
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        try await flood(0)
        let warmed = try Self.residentKilobytes(of: server.process.pid)
        try await flood(1)
        try await flood(2)
        let after = try Self.residentKilobytes(of: server.process.pid)
        #expect(after - warmed < 32 * 1024, "RSS grew from \(warmed) kB to \(after) kB over 80,000 more made-up keys")
        let metrics = try await server.metrics()
        #expect((metrics[#"aesel_udp_dropped_total{reason="not_in_scene"}"#] ?? 0) > 0)
        // Still up and delivering, once it has worked through the flood.
        let delivering = await eventually(timeout: .seconds(20)) {
            devices[1].drain()
            sender.send(Self.update(object, in: "s", x: 5), to: server.udpPort)
            return devices[1].receiveEvent()?.transform == Self.moved(5)
        }
        #expect(delivering)
    }

    static func residentKilobytes(of pid: pid_t) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    @Test("A seeded flood of random, mutated and valid datagrams: the server stays up and delivers every valid one in order")
    func mixedFlood() async throws {
        // No per-device event rate limit: the flood is over it by design, and EventRateLimitTests test it.
        let server = try TestServer(arguments: ["--event-rate", "0"])
        defer { server.stop() }
        let devices = try await server.devices("sender", "receiver", registeredIn: "flood")
        let valid = try await server.createObject(in: "flood")
        let target = try await server.createObject(in: "flood")
        let (sender, receiver) = (devices[0], devices[1])
        receiver.drain()
        let seed = UInt64(ProcessInfo.processInfo.environment["AESEL_FLOOD_SEED"] ?? "") ?? 0x5EED_AE5E
        var random = SplitMix64(seed: seed)
        let templates: [[UInt8]] = [
            Array(Self.update(target, in: "flood", x: 1, sequence: 1).utf8),
            Array(EventCodec.encode(ObjectEvent(sceneKey: "flood", objectKey: target, transform: Self.moved(2), sequence: 2), as: .binary, allocator: .init()).readableBytesView),
            Array(#"{"msg_type":9,"key":"\#(target)","scene":"flood","values":[1,2,3]}"#.utf8),
            Array(#"{"src":"127.0.0.1:1","msg_type":1,"key":"\#(target)","scene":"flood","transform":[],"x":{"y":[[[1]]]}}"#.utf8),
        ]
        let total = 30_000
        var sentValid: UInt64 = 0
        var delivered: [UInt64] = []
        for index in 0..<total {
            if index % 10 == 9 {
                // In step: each valid event is awaited before the next ten datagrams, so the socket never
                // overflows and every datagram reaches the server.
                sentValid += 1
                sender.send(Self.update(valid, in: "flood", x: Double(sentValid), sequence: sentValid), to: server.udpPort)
                while let event = receiver.receiveEvent() {
                    guard event.objectKey == valid else { continue }
                    delivered.append(event.sequence)
                    if event.sequence >= sentValid { break }
                }
            } else if index % 3 == 0 {
                sender.send((0..<Int(random.next() % 300)).map { _ in UInt8(truncatingIfNeeded: random.next()) }, to: server.udpPort)
            } else {
                sender.send(random.mutate(templates[Int(random.next() % UInt64(templates.count))]), to: server.udpPort)
            }
        }
        let metrics = try await server.metrics()
        #expect(try await server.request("GET", "/health").status == 200, "seed \(seed)")
        #expect(metrics["aesel_udp_received_total"] == Double(total), "seed \(seed)")
        #expect(delivered == Array(1...sentValid), "seed \(seed): \(delivered.count) of \(sentValid) valid events")
    }

    // MARK: HTTP

    /// A raw TCP exchange: sends `bytes` (optionally then shuts down writing), returns what arrives until
    /// the server closes, or nil if it has not closed within 10 s.
    static func exchange(_ server: TestServer, _ bytes: [UInt8], shutWrite: Bool = false) throws -> [UInt8]? {
        let fd = connectHTTP(server)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { break }
            offset += written
        }
        if shutWrite { shutdown(fd, Int32(SHUT_WR)) }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { return answer }
            if count < 0 { return errno == EAGAIN || errno == EWOULDBLOCK ? nil : answer }
            answer += buffer[0..<count]
        }
    }

    /// A TCP connection to the server's HTTP port; `receiveBuffer` (set before connecting) caps the window.
    static func connectHTTP(_ server: TestServer, receiveBuffer: Int32? = nil) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
        var address = UDPSocket.loopback(port: UInt16(server.process.port("http")!))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0)
        return fd
    }

    static func status(_ answer: [UInt8]?) -> String? {
        answer.map { String(decoding: $0.prefix(12), as: UTF8.self) }
    }

    @Test("HTTP: idle, half-sent and slow requests are closed; cut-short and badly chunked bodies are 400s")
    func httpTimeoutsAndCodes() async throws {
        let server = try TestServer(arguments: ["--http-idle-timeout", "1", "--http-header-timeout", "1", "--http-body-timeout", "1"])
        defer { server.stop() }
        #expect(try Self.exchange(server, []) == [], "an idle connection is closed")
        #expect(try Self.exchange(server, Array("GET /health HTTP/1.1\r\nHo".utf8)) == [], "a half-sent head is closed")
        let short = Array("PUT /v1/scene/x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n{\"scenes\":[]}".utf8)
        #expect(try Self.exchange(server, short) == [], "a body shorter than its Content-Length is closed")
        let cut = try Self.exchange(server, short, shutWrite: true)
        #expect(Self.status(cut) == "HTTP/1.1 400")
        let chunked = Array("PUT /v1/scene/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n".utf8)
        let badChunk = try Self.exchange(server, chunked)
        #expect(Self.status(badChunk) == "HTTP/1.1 400")
        #expect(String(decoding: badChunk ?? [], as: UTF8.self).contains(#""err_code":110"#))
        #expect(try await server.request("GET", "/health").status == 200)
    }

    @Test("HTTP: a client that stops reading a large answer is closed, and others are served meanwhile")
    func stalledReader() async throws {
        let server = try TestServer(arguments: ["--http-idle-timeout", "1"])
        defer { server.stop() }
        #expect(try await server.request("PUT", "/v1/scene/big", body: #"{"scenes":[{"name":"big"}]}"#).status == 200)
        let name = String(repeating: "n", count: 1000)
        for _ in 0..<10 {
            let objects = Array(repeating: #"{"scene":"big","name":"\#(name)"}"#, count: 800).joined(separator: ",")
            #expect(try await server.request("POST", "/v1/object", body: #"{"objects":[\#(objects)]}"#).status == 200)
        }
        let fd = Self.connectHTTP(server, receiveBuffer: 4096)
        defer { close(fd) }
        let body = #"{"num_records":10000,"objects":[{"scene":"big"}]}"#
        let request = Array("POST /v1/object/query HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        // Read nothing while the server is stuck writing; it still answers others, and gives up on this one.
        let closed = try await eventually(timeout: .seconds(60)) {
            try await server.metrics()[#"aesel_http_timeouts_total{phase="write"}"#] == 1
        }
        #expect(closed)
        #expect(try await server.request("GET", "/health").status == 200)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var received = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        var ended = false
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 { received += count; continue }
            ended = count == 0 || errno == ECONNRESET
            break
        }
        #expect(ended, "the server closed the connection")
        // More than the kernel's socket buffers can hold, so a cut shows.
        #expect(received < 7_000_000, "the answer (about 9 MB) was cut off: \(received) bytes arrived")
    }

    /// `method path` with `body`, sent with a Content-Length or in 64 KiB chunks, then `Connection: close`.
    /// - Parameter headers: more header fields, e.g. a server's credentials (``TestServer/headers``).
    static func request(_ method: String, _ path: String, body: [UInt8], chunked: Bool, headers: [String: String] = [:]) -> [UInt8] {
        let fields = headers.map { "\($0.key): \($0.value)\r\n" }.joined()
        guard chunked else {
            return Array("\(method) \(path) HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\(fields)Content-Length: \(body.count)\r\n\r\n".utf8) + body
        }
        var bytes = Array("\(method) \(path) HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\(fields)Transfer-Encoding: chunked\r\n\r\n".utf8)
        var offset = 0
        while offset < body.count {
            let chunk = body[offset..<min(offset + 65536, body.count)]
            bytes += Array("\(String(chunk.count, radix: 16))\r\n".utf8) + chunk + Array("\r\n".utf8)
            offset += chunk.count
        }
        return bytes + Array("0\r\n\r\n".utf8)
    }

    @Test("HTTP: a client that writes a 20 MB body before reading still reads the 413, and keep-alive goes on", arguments: [false, true])
    func oversizedBody(chunked: Bool) async throws {
        let server = try TestServer()
        defer { server.stop() }
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: 20 << 20)
        for path in ["/v1/scene/big", "/v1/object/some-key"] {
            let answer = try Self.exchange(server, Self.request(path.hasPrefix("/v1/scene") ? "PUT" : "POST", path, body: body, chunked: chunked))
            #expect(Self.status(answer) == "HTTP/1.1 413", "\(path)")
            let text = String(decoding: answer ?? [], as: UTF8.self)
            #expect(text.contains(#""err_code":110"#))
            #expect(text.contains("larger than 1048576 bytes"))
            #expect(!text.contains("NIO"), "no internal error names in the answer")
        }
        let reply = try await server.request("PUT", "/v1/scene/big", body: String(repeating: "x", count: 2 << 20))
        #expect(reply.status == 413)
        #expect(try await server.request("GET", "/health").status == 200)
    }

    @Test("HTTP: a client writing an oversized body slowly, longer than the drain waits for a next part, is read to its end and gets its 413")
    func slowOversizedBody() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let fd = Self.connectHTTP(server)
        defer { close(fd) }
        let pieces = 80
        let size = pieces * 40_000
        let head = Array("PUT /v1/scene/slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: \(size)\r\n\r\n".utf8)
        #expect(head.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == head.count)
        // 80 pieces a quarter of a second apart: 20 s in all, past the 10 s the drain waits for each part
        // (which used to be its whole time), within the 30 s a body may take.
        // Paced on a thread of its own: the shared pool may be slow to wake a sleeping task when other
        // tests block its threads, and a gap past 10 s would be a client that stalled.
        let piece = [UInt8](repeating: UInt8(ascii: "x"), count: size / pieces)
        let sent = await withCheckedContinuation { continuation in
            Thread {
                var sent = 0
                for _ in 0..<pieces {
                    let written = piece.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    guard written == piece.count else { break }
                    sent += written
                    usleep(250_000)
                }
                continuation.resume(returning: sent)
            }.start()
        }
        #expect(sent == size, "the server read the whole body, without a reset")
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            answer += buffer[0..<count]
        }
        #expect(Self.status(answer) == "HTTP/1.1 413")
        #expect(String(decoding: answer, as: UTF8.self).contains(#""err_code":110"#))
    }

    @Test("HTTP: the largest body is configured (--http-body-limit, or http.body.limit in the file), with or without a Content-Length", arguments: [false, true])
    func configuredBodyLimit(chunked: Bool) async throws {
        let server = try TestServer(arguments: ["--http-body-limit", "4096"])
        defer { server.stop() }
        let file = NSTemporaryDirectory() + "aesel-limit-\(UUID().uuidString).json"
        try Data(#"{"http": {"body": {"limit": 4096}}}"#.utf8).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let adrestia = try TestServer("adrestia", arguments: ["--config", file])
        defer { adrestia.stop() }
        let scene = Array(#"{"scenes":[{"name":"padded"}]}"#.utf8)
        let fits = scene + [UInt8](repeating: UInt8(ascii: " "), count: 4096 - scene.count)
        let answer = try Self.exchange(server, Self.request("PUT", "/v1/scene/padded", body: fits, chunked: chunked))
        #expect(Self.status(answer) == "HTTP/1.1 200")
        for target in [server, adrestia] {
            // Adrestia asks for credentials before it reads a body it has no length of.
            let refused = try Self.exchange(target, Self.request("PUT", "/v1/scene/padded", body: fits + [UInt8(ascii: " ")], chunked: chunked, headers: target.headers))
            #expect(Self.status(refused) == "HTTP/1.1 413")
            let text = String(decoding: refused ?? [], as: UTF8.self)
            #expect(text.contains(#""err_code":110"#))
            #expect(text.contains("larger than 4096 bytes"))
        }
    }
}

/// A small seeded generator (SplitMix64), so a failing flood can be replayed with its seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Flips, drops, repeats or inserts a few bytes, or cuts the datagram short.
    mutating func mutate(_ bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        for _ in 0..<(1 + Int(next() % 4)) where !bytes.isEmpty {
            let index = Int(next() % UInt64(bytes.count))
            switch next() % 5 {
            case 0: bytes[index] ^= UInt8(truncatingIfNeeded: 1 << (next() % 8))
            case 1: bytes.remove(at: index)
            case 2: bytes.insert(contentsOf: bytes[index...].prefix(Int(next() % 16)), at: index)
            case 3: bytes.insert(UInt8(truncatingIfNeeded: next()), at: index)
            default: bytes = Array(bytes.prefix(index))
            }
        }
        return bytes
    }
}
