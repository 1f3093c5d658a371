import AeselLocalCluster
import AeselModel
import AeselSealing
import AeselWire
import AeselHTTP
import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Synchronization
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// A real `aesel serve` process on free loopback ports with its own data folder, stopped by PID.
package final class TestServer: @unchecked Sendable {
    // @unchecked: `process` is replaced only by `restart`, which a test calls from one task.
    package private(set) var process: ServerProcess
    package let dataFolder: String
    private let extraArguments: [String]
    private let command: String
    /// Sent on every request ``request(_:_:body:headers:)`` makes unless it is given its own.
    package let headers: [String: String]

    private let removeStore: @Sendable () async throws -> Void

    /// Whether the server asks for credentials (protected mode, docs/security.md).
    package enum Access {
        /// As protected mode asks: ``TestCredentials/shared`` for every process but `aesel serve` on
        /// loopback, which runs open.
        case automatic
        case credentials(TestCredentials)
        /// No credentials: `aesel serve` on loopback, or a process given `--insecure`.
        case open
    }

    /// - Parameters:
    ///   - command: `serve`, `pair`, `adrestia`, or `clyman` or `crazyivan` for one half.
    ///   - access: the server is given the credentials' files, and requests carry its admin key.
    package init(
        _ command: String = "serve", dataFolder: String? = nil, arguments: [String] = [], access: Access = .automatic,
        removeStore: @escaping @Sendable () async throws -> Void = {}
    ) throws {
        self.command = command
        self.dataFolder = dataFolder ?? NSTemporaryDirectory() + "aesel-test-\(UUID().uuidString)"
        let credentials: TestCredentials?
        switch access {
        case .automatic: credentials = Self.runsOpen(command, arguments) ? nil : .shared
        case .credentials(let given): credentials = given
        case .open: credentials = nil
        }
        extraArguments = arguments + (credentials?.serverArguments ?? [])
        headers = credentials?.adminHeaders ?? [:]
        self.removeStore = removeStore
        process = try Self.start(command, dataFolder: self.dataFolder, arguments: extraArguments)
    }

    /// `aesel serve` on a loopback address (the default) may run open; so may anything `--insecure`.
    private static func runsOpen(_ command: String, _ arguments: [String]) -> Bool {
        if arguments.contains("--insecure") { return true }
        let host = arguments.firstIndex(of: "--host").map { arguments[arguments.index(after: $0)] } ?? "127.0.0.1"
        return command == "serve" && isLoopback(host)
    }

    /// A server on a fresh store of `kind`: SQLite in its data folder, or a PostgreSQL database of its own.
    package static func start(store kind: StoreKind) async throws -> TestServer {
        switch kind {
        case .memory:
            throw TestSetupError(description: "a server process has no in-memory store: use StoreKind.durable")
        case .sqlite:
            return try TestServer()
        case .postgres:
            let (url, remove) = try await TestStore.postgresDatabase()
            return try TestServer(arguments: ["--store", url], removeStore: remove)
        }
    }

    /// Stops the server and removes its store.
    package func finish() async {
        stop()
        try? await removeStore()
    }

    private static func start(_ command: String, dataFolder: String, arguments: [String]) throws -> ServerProcess {
        try ServerProcess(
            executable: ServerProcess.aeselExecutable(),
            // Adrestia has no UDP event port.
            arguments: [command, "--http-port", "0"] + (command == "adrestia" ? [] : ["--udp-port", "0"]) + ["--data", dataFolder, "--log-level", "warning"] + arguments
        )
    }

    /// The server's base URL, `https://` when its arguments give it a `--tls-certificate`; one bound to
    /// every interface is reached on loopback.
    package var url: String {
        let http = process.endpoints["http"]!
        let scheme = extraArguments.contains("--tls-certificate") ? "https://" : "http://"
        return scheme + (http.hasPrefix("0.0.0.0:") ? "127.0.0.1" + http.dropFirst("0.0.0.0".count) : http)
    }

    /// The client of ``request(_:_:body:)`` and ``metrics()``: it trusts what the server's `--tls-ca`
    /// names, as the server's own calls do.
    package var http: HTTPClient {
        get throws {
            let ca = extraArguments.firstIndex(of: "--tls-ca").map { extraArguments[extraArguments.index(after: $0)] }
            return try testHTTPClient(trusting: ca)
        }
    }
    package var udpPort: UInt16 { UInt16(process.port("udp")!) }

    /// Stops (gracefully with SIGTERM unless told otherwise) and starts again on the same data folder;
    /// returns the exit status.
    @discardableResult
    package func restart(signal: Int32 = SIGTERM) throws -> Int32 {
        let status = process.stop(signal: signal)
        process = try Self.start(command, dataFolder: dataFolder, arguments: extraArguments)
        return status
    }

    /// Kills the process (SIGKILL), runs `whileDown`, then starts it again with the same arguments.
    package func restartLater(_ whileDown: () async throws -> Void) async throws {
        _ = process.stop(signal: SIGKILL)
        try await whileDown()
        process = try Self.start(command, dataFolder: dataFolder, arguments: extraArguments)
    }

    @discardableResult
    package func stop() -> Int32 {
        let status = process.stop()
        try? FileManager.default.removeItem(atPath: dataFolder)
        return status
    }

    /// Sends a request with a raw body and ``headers`` (or `headers` when given); returns the status and
    /// the parsed JSON body.
    package func request(_ method: String, _ path: String, body: String? = nil, headers: [String: String]? = nil) async throws -> (status: Int, json: [String: Any]) {
        let answer = try await exchange(method, path, body: body, headers: headers)
        return (answer.status, answer.json)
    }

    /// As ``request(_:_:body:headers:)``, with the answer's header fields too.
    package func exchange(_ method: String, _ path: String, body: String? = nil, headers: [String: String]? = nil) async throws -> (
        status: Int, json: [String: Any], headers: HTTPHeaders
    ) {
        var request = HTTPClientRequest(url: url + path)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers ?? self.headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await http.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 22)
        let json = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
        return (Int(response.status.code), json, response.headers)
    }

    /// Registers `device` in `scene` (with `headers`, else ``headers``); returns the response body.
    @discardableResult
    package func register(_ device: TestDevice, in scene: String, format: EventFormat = .json, headers: [String: String]? = nil) async throws -> [String: Any] {
        let body = """
            {"scenes":[{"key":"\(scene)","devices":[{"key":"\(device.key)","hostname":"127.0.0.1","port":\(device.port),"format":"\(format.rawValue)"}]}]}
            """
        let answer = try await request("POST", "/v1/scene/\(scene)/register", body: body, headers: headers).json
        device.sessions.adopt(answer, sceneKey: scene, deviceKey: device.key)
        return answer
    }

    /// New devices, each registered in `scene` in JSON.
    package func devices(_ keys: String..., registeredIn scene: String) async throws -> [TestDevice] {
        var devices: [TestDevice] = []
        for key in keys {
            let device = try TestDevice(key)
            try await register(device, in: scene)
            devices.append(device)
        }
        return devices
    }

    package func deregister(_ device: TestDevice, from scene: String) async throws -> [String: Any] {
        try await request("POST", "/v1/scene/\(scene)/deregister", body: #"{"scenes":[{"devices":[{"key":"\#(device.key)"}]}]}"#).json
    }

    /// Creates an object in `scene`; returns its key.
    package func createObject(in scene: String, name: String = "thing") async throws -> String {
        let reply = try await request("POST", "/v1/object", body: #"{"objects":[{"name":"\#(name)","scene":"\#(scene)"}]}"#)
        let objects = reply.json["objects"] as? [[String: Any]]
        return objects?.first?["key"] as? String ?? ""
    }

    /// The server's Prometheus samples, by name with labels, e.g. `aesel_udp_dropped_total{reason="malformed"}`.
    package func metrics() async throws -> [String: Double] {
        var request = HTTPClientRequest(url: url + "/metrics")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await http.execute(request, timeout: .seconds(10))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 22))
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = Double(parts[1]) { values[String(parts[0])] = value }
        }
        return values
    }

    deinit {
        _ = process.stop(signal: SIGKILL)
    }
}

/// A simulated device: one UDP socket that sends its events and receives the scene's. Registered with a
/// pair that seals events, it seals what it sends with its latest session and opens what it receives
/// with any of its sessions (a device of several scenes has one each); `socket` sends as it is.
package struct TestDevice: Sendable {
    package let key: String
    package let socket: UDPSocket
    package let sessions = TestDeviceSessions()

    package init(_ key: String) throws {
        self.key = key
        socket = try UDPSocket()
        var timeout = timeval(tv_sec: 0, tv_usec: 300_000)
        setsockopt(socket.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    package var port: UInt16 { socket.port }

    package func send(_ bytes: [UInt8], to port: UInt16) {
        socket.sendRaw(sessions.latest.map { Array($0.seal(ByteBuffer(bytes: bytes)).readableBytesView) } ?? bytes, to: port)
    }

    package func send(_ text: String, to port: UInt16) {
        send(Array(text.utf8), to: port)
    }

    package func send(_ event: ObjectEvent, as format: EventFormat, to port: UInt16) {
        send(Array(EventCodec.encode(event, as: format, allocator: ByteBufferAllocator()).readableBytesView), to: port)
    }

    /// The next datagram, opened if sealed, or nil after the receive timeout (300 ms).
    package func receive() -> [UInt8]? {
        socket.receiveRaw().map(sessions.open)
    }

    /// Reads and drops what has arrived, e.g. the event of an object just created over HTTP.
    package func drain() {
        while receive() != nil {}
    }

    package func receiveEvent() -> ObjectEvent? {
        receive().flatMap { try? EventCodec.decode(ByteBuffer(bytes: $0)) }
    }

    /// Up to `count` events, waiting at most `timeout` in all without blocking a thread: for tests whose
    /// server runs in the same process, on the same cooperative pool.
    package func receiveEvents(_ count: Int, timeout: Duration = .seconds(10)) async -> [ObjectEvent] {
        var events: [ObjectEvent] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = ContinuousClock.now + timeout
        while events.count < count, ContinuousClock.now < deadline {
            let received = buffer.withUnsafeMutableBytes { socket.receive(into: $0, flags: Int32(MSG_DONTWAIT))?.count }
            guard let received else {
                try? await Task.sleep(for: .milliseconds(1))
                continue
            }
            if let event = try? EventCodec.decode(ByteBuffer(bytes: sessions.open(Array(buffer[0..<received])))) { events.append(event) }
        }
        return events
    }

    package func close() {
        socket.close()
    }
}

/// A test device's sealed-event sessions, from its registration answers.
package final class TestDeviceSessions: Sendable {
    private let state = Mutex<(latest: DeviceSession?, byKeyID: [UInt64: DeviceSession])>((nil, [:]))

    /// Takes the session a registration answer carries, if any.
    package func adopt(_ answer: [String: Any], sceneKey: String, deviceKey: String) {
        let keyID = (answer["session_key_id"] as? NSNumber)?.uint64Value
        guard let session = DeviceSession(keyID: keyID, secret: answer["session_key"] as? String, sceneKey: sceneKey, deviceKey: deviceKey) else { return }
        state.withLock { state in
            state.latest = session
            state.byKeyID[session.keyID] = session
        }
    }

    package var latest: DeviceSession? { state.withLock { $0.latest } }

    /// The plaintext of a sealed datagram from one of the sessions; anything else as it came (an unsealed
    /// datagram, or one no session opens, which then decodes as no event).
    package func open(_ datagram: [UInt8]) -> [UInt8] {
        let buffer = ByteBuffer(bytes: datagram)
        guard let header = SealedDatagram.header(of: buffer), let session = state.withLock({ $0.byKeyID[header.keyID] }),
            case .opened(let plaintext) = session.open(buffer)
        else { return datagram }
        return Array(plaintext.readableBytesView)
    }
}

private let testHTTPClients = NIOLockedValueBox<[String: HTTPClient]>([:])

/// AsyncHTTPClient's shared client, or for `https://` servers signed by the authority in the PEM file
/// `certificateAuthority`, one that trusts it (kept for the process's life, as the shared one is).
package func testHTTPClient(trusting certificateAuthority: String?) throws -> HTTPClient {
    guard let certificateAuthority else { return HTTPClient.shared }
    return try testHTTPClients.withLockedValue { clients in
        if let client = clients[certificateAuthority] { return client }
        var configuration = HTTPClient.Configuration()
        configuration.tlsConfiguration = try TLSSettings.clientConfiguration(trusting: certificateAuthority)
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
        clients[certificateAuthority] = client
        return client
    }
}

/// Polls `condition` until it holds or `timeout` passes.
package func eventually(timeout: Duration = .seconds(5), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}

/// A Kafka stream URL on the test broker (`AESEL_TEST_KAFKA`, set by scripts/test.sh), with a topic of
/// its own. The test fails, rather than skips, when there is no broker.
package func kafkaStream() throws -> String {
    guard let broker = ProcessInfo.processInfo.environment["AESEL_TEST_KAFKA"], !broker.isEmpty else {
        throw TestSetupError(description: "AESEL_TEST_KAFKA is not set: run scripts/test.sh, or start a broker with scripts/kafka.sh and export its address")
    }
    return "kafka://\(broker)/aesel-\(UUID().uuidString.prefix(8).lowercased())"
}

/// A UDP port nothing is bound to right now.
package func freeUDPPort() throws -> Int {
    let socket = try UDPSocket()
    defer { socket.close() }
    return Int(socket.port)
}
