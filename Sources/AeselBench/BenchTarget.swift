import AeselClient
import AeselLocalCluster
import AeselTesting
import AeselModel
import AeselSealing
import AeselWire
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Something the benchmark sends events through: an Aesel server, or the baseline relay.
protocol BenchTarget {
    var name: String { get }
    /// Makes the devices known to the target; returns where they send their events.
    func prepare(_ devices: inout [SimulatedDevice], format: EventFormat) async throws -> sockaddr_in
    func stop()
}

/// How the benchmark lays out the server processes it starts.
public enum BenchLayout: String, Sendable, Codable, CaseIterable {
    /// `aesel serve`: one process.
    case serve
    /// `aesel clyman` and `aesel crazyivan`: two processes on a shared store (needs a ZeroMQ or Kafka stream).
    case split
}

/// An Aesel server reached over its HTTP API, started by the benchmark unless given by URL.
final class AeselTarget: BenchTarget {
    let name: String
    /// Where scenes and registrations go (the gateway, or CrazyIvan).
    let url: String
    /// Where objects go (the gateway, or CLyman).
    let objectURL: String
    private let credential: AeselCredential?
    private let servers: [ServerProcess]
    private let dataFolder: String?

    /// - Parameter serverArguments: extra server arguments when the benchmark starts the servers.
    init(url existing: String?, credential: AeselCredential? = nil, serverArguments: [String] = [], layout: BenchLayout = .serve, nameSuffix: String = "") throws {
        name = (layout == .serve ? "aesel" : "aesel-\(layout.rawValue)") + nameSuffix
        self.credential = credential
        if let existing {
            url = existing
            objectURL = existing
            servers = []
            dataFolder = nil
            return
        }
        let folder = NSTemporaryDirectory() + "aesel-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        func start(_ command: String) throws -> ServerProcess {
            try ServerProcess(
                executable: ServerProcess.aeselExecutable(),
                // No event rate limit: the benchmark measures the path at rates no device would send. The
                // halves alone run --insecure (no credentials): it measures events, not authentication.
                arguments: [command, "--http-port", "0", "--udp-port", "0", "--data", folder, "--log-level", "warning", "--event-rate", "0"]
                    + (command == "serve" ? [] : ["--insecure"]) + serverArguments
            )
        }
        switch layout {
        case .serve:
            let server = try start("serve")
            servers = [server]
            url = "http://\(server.endpoints["http"] ?? "")"
            objectURL = url
        case .split:
            let clyman = try start("clyman")
            let crazyIvan = try start("crazyivan")
            servers = [crazyIvan, clyman]
            url = "http://\(crazyIvan.endpoints["http"] ?? "")"
            objectURL = "http://\(clyman.endpoints["http"] ?? "")"
        }
        dataFolder = folder
    }

    func prepare(_ devices: inout [SimulatedDevice], format: EventFormat) async throws -> sockaddr_in {
        var destination: sockaddr_in?
        for index in devices.indices {
            let device = devices[index]
            let registration = SceneList(scenes: [
                SceneJSON(key: device.sceneKey, devices: [DeviceJSON(key: device.key, hostname: "127.0.0.1", port: Int(device.socket.port), format: format)])
            ])
            let registered: SceneList = try await post("/v1/scene/\(device.sceneKey)/register", registration)
            guard registered.errorCode == .noError, let port = registered.eventDestinationPort else {
                throw BenchError.server("registration failed: \(registered.errorMessage ?? "no event destination")")
            }
            destination = UDPSocket.loopback(port: UInt16(port))
            devices[index].session = DeviceSession(keyID: registered.sessionKeyID, secret: registered.sessionKey, sceneKey: device.sceneKey, deviceKey: device.key)
            var object = ObjectJSON(name: "bench \(device.key)")
            object.scene = device.sceneKey
            let created: ObjectList = try await post("/v1/object", ObjectList(items: [object]), base: objectURL)
            guard let key = created.items?.first?.key else { throw BenchError.server("object create failed") }
            devices[index].objectKey = key
        }
        guard let destination else { throw BenchError.server("no devices") }
        return destination
    }

    private func post<Body: Encodable, Reply: Decodable>(_ path: String, _ body: Body, base: String? = nil) async throws -> Reply {
        var request = HTTPClientRequest(url: (base ?? url) + path)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        if let credential { request.headers.add(name: credential.header.name, value: credential.header.value) }
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return try JSONDecoder().decode(Reply.self, from: Data(bytes.readableBytesView))
    }

    func stop() {
        for server in servers { server.stop() }
        if let dataFolder { try? FileManager.default.removeItem(atPath: dataFolder) }
    }
}

/// A baseline relay in its own process, told the devices of each scene directly.
final class BaselineTarget: BenchTarget {
    let name: String
    private let mode: BaselineRelay.Mode
    private var relay: ServerProcess?

    init(_ mode: BaselineRelay.Mode) {
        self.mode = mode
        name = mode == .plain ? "baseline" : "baseline-" + mode.name
    }

    func prepare(_ devices: inout [SimulatedDevice], format: EventFormat) async throws -> sockaddr_in {
        var scenes: [String: [BaselineRelay.Routes.Device]] = [:]
        for index in devices.indices {
            devices[index].objectKey = "object-\(devices[index].key)"
            scenes[devices[index].sceneKey, default: []].append(.init(key: devices[index].key, port: devices[index].socket.port))
        }
        let path = NSTemporaryDirectory() + "aesel-\(name)-routes-\(getpid()).json"
        try JSONEncoder().encode(BaselineRelay.Routes(scenes: scenes)).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let relay = try ServerProcess(executable: ServerProcess.aeselExecutable(), arguments: ["relay", "--routes", path, "--mode", mode.name])
        self.relay = relay
        guard let port = relay.port("udp") else { throw BenchError.server("the relay reported no port") }
        return UDPSocket.loopback(port: UInt16(port))
    }

    func stop() {
        relay?.stop()
    }
}
