import AeselLocalCluster
import AeselModel
import AeselTesting
import Foundation
import Testing

/// Which address devices are told to send events to, and who may listen on the UDP event port.
@Suite("Addresses and ports", .timeLimit(.minutes(2)))
struct AddressTests {
    /// Registers a sender and a receiver in `scene`; returns them with the registration answer.
    func registerPair(on server: TestServer, in scene: String) async throws -> (sender: TestDevice, receiver: TestDevice, answer: [String: Any]) {
        let sender = try TestDevice("sender")
        let receiver = try TestDevice("receiver")
        let answer = try await server.register(sender, in: scene)
        try await server.register(receiver, in: scene)
        return (sender, receiver, answer)
    }

    @Test("serve --host 0.0.0.0 answers a registration made to 127.0.0.1 with 127.0.0.1, and events sent there flow")
    func wildcardBind() async throws {
        let server = try TestServer(arguments: ["--host", "0.0.0.0"])
        defer { server.stop() }
        #expect(server.process.endpoints["http"]?.hasPrefix("0.0.0.0:") == true)
        let (sender, receiver, answer) = try await registerPair(on: server, in: "open")
        #expect(answer["err_code"] as? Int == 100)
        #expect(answer["event_destination_host"] as? String == "127.0.0.1")
        #expect(answer["event_destination_port"] as? Int == Int(server.udpPort))
        let endpoint = try await server.request("GET", "/v1/scene/open/endpoint")
        #expect(endpoint.json["event_destination_host"] as? String == "127.0.0.1")
        // A refused registration names the endpoint too, never the wildcard.
        let refused = try await server.request("POST", "/v1/register", body: #"{"scenes":[{"key":"open","devices":[{"key":"x"}]}]}"#)
        #expect(refused.json["err_code"] as? Int == 122)
        #expect(refused.json["event_destination_host"] as? String == "127.0.0.1")

        let object = try await server.createObject(in: "open")
        receiver.drain()
        sender.send(#"{"msg_type":1,"key":"\#(object)","scene":"open","seq":1}"#, to: server.udpPort)
        #expect(await receiver.receiveEvents(1).first?.sequence == 1)
    }

    @Test("--advertise-host is answered as given, with a wildcard bind too; a wildcard one is refused at start")
    func advertiseHost() async throws {
        let server = try TestServer(arguments: ["--host", "0.0.0.0", "--advertise-host", "events.example.test"])
        defer { server.stop() }
        let (_, _, answer) = try await registerPair(on: server, in: "far")
        #expect(answer["event_destination_host"] as? String == "events.example.test")
        #expect(answer["event_destination_port"] as? Int == Int(server.udpPort))
        let endpoint = try await server.request("GET", "/v1/scene/far/endpoint")
        #expect(endpoint.json["event_destination_host"] as? String == "events.example.test")

        let folder = NSTemporaryDirectory() + "aesel-test-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let refused = try ServerProcess.runToExit(
            executable: ServerProcess.aeselExecutable(),
            arguments: ["serve", "--http-port", "0", "--udp-port", "0", "--data", folder, "--advertise-host", "0.0.0.0"])
        #expect(refused.status != 0)
        #expect(refused.output.contains("advertise.host: 0.0.0.0 is not an address others can reach"), "\(refused.output)")
    }

    @Test("A second server on a taken UDP port fails at start with a clear message; the first keeps the traffic")
    func exclusiveUDPPort() async throws {
        let first = try TestServer()
        defer { first.stop() }
        let folder = NSTemporaryDirectory() + "aesel-test-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let second = try ServerProcess.runToExit(
            executable: ServerProcess.aeselExecutable(),
            arguments: ["serve", "--http-port", "0", "--udp-port", "\(first.udpPort)", "--data", folder, "--log-level", "warning"])
        #expect(second.status != 0)
        #expect(second.output.contains("udp.port: UDP port \(first.udpPort) on 127.0.0.1 is in use by another process"), "\(second.output)")

        let (sender, receiver, _) = try await registerPair(on: first, in: "mine")
        let object = try await first.createObject(in: "mine")
        receiver.drain()
        sender.send(#"{"msg_type":1,"key":"\#(object)","scene":"mine","seq":1}"#, to: first.udpPort)
        #expect(await receiver.receiveEvents(1).first?.sequence == 1)
    }

    @Test("A CrazyIvan alone answers its CLyman's advertised host, and the request's address when that CLyman is bound to a wildcard")
    func splitLayout() async throws {
        for (clymanArguments, expected) in [(["--advertise-host", "events.example.test"], "events.example.test"), (["--host", "0.0.0.0"], "127.0.0.1")] {
            let folder = NSTemporaryDirectory() + "aesel-split-\(UUID().uuidString)"
            let stream = "zmq+ipc://" + NSTemporaryDirectory() + "aesel-\(UUID().uuidString.prefix(8)).sock"
            let clyman = try TestServer("clyman", dataFolder: folder, arguments: ["--stream", stream] + clymanArguments)
            let crazyIvan = try TestServer("crazyivan", dataFolder: folder, arguments: ["--stream", stream])
            defer {
                crazyIvan.stop()
                clyman.stop()
            }
            let (_, _, answer) = try await registerPair(on: crazyIvan, in: "split")
            #expect(answer["event_destination_host"] as? String == expected, "clyman \(clymanArguments)")
            #expect(answer["event_destination_port"] as? Int == Int(clyman.udpPort))
        }
    }
}
