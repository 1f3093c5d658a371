import AeselClient
import AeselAuth
import AeselLocalCluster
import AeselModel
import AeselTesting
import Foundation
import NIOHTTP1
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Who may call (docs/security.md, Authenticated transactions and Protected mode), against real
/// processes over real HTTP.
@Suite("Authenticated transactions and protected mode", .timeLimit(.minutes(3)))
struct AuthTests {
    static let credentials = TestCredentials.shared

    static func bearer(_ token: String) -> [String: String] { ["Authorization": "Bearer " + token] }

    @Test("No credential, a bad token, a bad API key: 401 in the envelope with WWW-Authenticate: Bearer; /health stays open")
    func unauthenticated() async throws {
        let server = try TestServer(access: .credentials(Self.credentials))
        defer { server.stop() }
        let refusals: [[String: String]] = [
            [:], Self.bearer("not.a.token"), Self.bearer(try await TestCredentials().token(role: .admin)), ["X-API-Key": "aesel_unknown"],
            ["Authorization": "Basic YWRtaW46YWRtaW4="],
        ]
        for headers in refusals {
            for (method, path) in [("GET", "/v1/scene/x"), ("POST", "/v1/object/query"), ("GET", "/v1/property/p")] {
                let answer = try await server.exchange(method, path, body: method == "POST" ? "{}" : nil, headers: headers)
                #expect(answer.status == 401, "\(method) \(path) \(headers)")
                #expect(answer.headers["WWW-Authenticate"].first?.hasPrefix("Bearer") == true, "\(headers)")
                #expect(answer.json["err_code"] as? Int == 101)
                #expect((answer.json["err_msg"] as? String)?.isEmpty == false)
                // The envelope of the route's family.
                #expect(answer.json[path.contains("object") ? "objects" : path.contains("property") ? "properties" : "scenes"] != nil, "\(answer.json)")
            }
        }
        #expect(try await server.request("GET", "/health", headers: [:]).status == 200)
        #expect(try await server.request("GET", "/metrics", headers: [:]).status == 401)
        #expect(try await server.request("GET", "/metrics").status == 200)
        let refused = try await server.metrics()
        #expect((refused[#"aesel_http_auth_refused_total{reason="missing"}"#] ?? 0) >= 4)
        #expect((refused[#"aesel_http_auth_refused_total{reason="invalid"}"#] ?? 0) >= 12)
    }

    @Test("An application token reaches its scenes only: 403 elsewhere, lists filtered; an admin reaches all")
    func applicationScenes() async throws {
        let server = try TestServer(access: .credentials(Self.credentials))
        defer { server.stop() }
        let app = Self.bearer(try await Self.credentials.token(role: .application, scenes: ["mine", "lab-*"]))
        // The admin (the server's default headers) makes a scene and an object the application may not see.
        #expect(try await server.request("PUT", "/v1/scene/theirs", body: #"{"scenes":[{"name":"theirs"}]}"#).status == 200)
        let theirs = try await server.createObject(in: "theirs")
        let theirProperty = try await server.request("POST", "/v1/property", body: #"{"properties":[{"name":"p","scene":"theirs"}]}"#)
        let propertyKey = try #require((theirProperty.json["properties"] as? [[String: Any]])?.first?["key"] as? String)

        for (method, path, body) in [
            ("PUT", "/v1/scene/mine", #"{"scenes":[{"name":"mine"}]}"#), ("PUT", "/v1/scene/lab-1", #"{"scenes":[{"name":"lab"}]}"#),
            ("POST", "/v1/object", #"{"objects":[{"name":"ok","scene":"lab-1"}]}"#), ("GET", "/v1/scene/mine", nil),
            ("POST", "/v1/scene/mine/object", #"{"objects":[{"name":"scoped"}]}"#),
        ] {
            #expect(try await server.request(method, path, body: body, headers: app).status == 200, "\(method) \(path)")
        }
        let forbidden: [(String, String, String?)] = [
            ("GET", "/v1/scene/theirs", nil), ("POST", "/v1/scene/theirs", #"{"scenes":[{"name":"x"}]}"#), ("DELETE", "/v1/scene/theirs", nil),
            ("PUT", "/v1/scene/lab", #"{"scenes":[{"name":"x"}]}"#), ("POST", "/v1/scene", #"{"scenes":[{"name":"no key"}]}"#),
            ("GET", "/v1/object/\(theirs)", nil), ("DELETE", "/v1/object/\(theirs)", nil), ("GET", "/v1/object/\(theirs)/lock?device=d", nil),
            ("POST", "/v1/object/\(theirs)/action", #"{"name":"a"}"#), ("GET", "/v1/property/\(propertyKey)", nil),
            ("POST", "/v1/object", #"{"objects":[{"name":"x","scene":"theirs"}]}"#),
            ("POST", "/v1/scene/theirs/object", #"{"objects":[{"name":"x"}]}"#),
            ("GET", "/v1/scene/theirs/object/\(theirs)", nil), ("GET", "/v1/scene/mine/object/\(theirs)", nil),
            ("POST", "/v1/register", #"{"scenes":[{"key":"theirs","devices":[{"key":"d","hostname":"127.0.0.1","port":9}]}]}"#),
            ("POST", "/v1/scene/theirs/register", #"{"scenes":[{"devices":[{"key":"d","hostname":"127.0.0.1","port":9}]}]}"#),
            ("GET", "/v1/scene/theirs/endpoint", nil), ("PUT", "/v1/scene/cache/mine", nil), ("GET", "/metrics", nil),
        ]
        for (method, path, body) in forbidden {
            let answer = try await server.request(method, path, body: body, headers: app)
            #expect(answer.status == 403, "\(method) \(path): \(answer.status) \(answer.json)")
            #expect(answer.json["err_code"] as? Int == 101, "\(method) \(path)")
        }
        // Moving its own object into another's scene takes that scene too.
        let own = try await server.request("POST", "/v1/object", body: #"{"objects":[{"name":"own","scene":"mine"}]}"#, headers: app)
        let ownKey = try #require((own.json["objects"] as? [[String: Any]])?.first?["key"] as? String)
        #expect(try await server.request("POST", "/v1/object/\(ownKey)", body: #"{"objects":[{"scene":"theirs"}]}"#, headers: app).status == 403)
        #expect(try await server.request("GET", "/v1/object/\(theirs)").status == 200, "the admin reaches every scene")

        // Queries list only the application's scenes and their objects.
        let scenes = try await server.request("POST", "/v1/scene/query", body: #"{"scenes":[{}],"num_records":100}"#, headers: app)
        #expect(Set((scenes.json["scenes"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }) == ["mine", "lab-1"])
        let objects = try await server.request("POST", "/v1/object/query", body: #"{"objects":[{}],"num_records":100}"#, headers: app)
        let listed = (objects.json["objects"] as? [[String: Any]] ?? []).compactMap { $0["scene"] as? String }
        #expect(!listed.isEmpty && listed.allSatisfy { $0 != "theirs" }, "\(listed)")
        let all = try await server.request("POST", "/v1/object/query", body: #"{"objects":[{}],"num_records":100}"#)
        #expect((all.json["objects"] as? [[String: Any]] ?? []).contains { $0["scene"] as? String == "theirs" })
    }

    @Test("An application token registers devices in its scene and their events flow; /metrics is open with --metrics-open")
    func applicationDevices() async throws {
        let server = try TestServer(arguments: ["--metrics-open"], access: .credentials(Self.credentials))
        defer { server.stop() }
        let app = Self.bearer(try await Self.credentials.token(role: .application, scenes: ["stage"]))
        let sender = try TestDevice("sender")
        let receiver = try TestDevice("receiver")
        #expect(try await server.register(sender, in: "stage", headers: app)["err_code"] as? Int == 100)
        #expect(try await server.register(receiver, in: "stage", headers: app)["err_code"] as? Int == 100)
        let created = try await server.request("POST", "/v1/object", body: #"{"objects":[{"name":"prop","scene":"stage"}]}"#, headers: app)
        let object = try #require((created.json["objects"] as? [[String: Any]])?.first?["key"] as? String)
        receiver.drain()
        sender.send(#"{"msg_type":1,"key":"\#(object)","scene":"stage","seq":1}"#, to: server.udpPort)
        #expect(await receiver.receiveEvents(1).first?.sequence == 1)
        #expect(try await server.request("GET", "/metrics", headers: [:]).status == 200)
        #expect(try await server.request("GET", "/v1/scene/stage", headers: [:]).status == 401)
    }

    @Test("Through Adrestia: an application joins its scene with AeselClient, is refused another; a pair with a wrong cluster secret never joins")
    func cluster() async throws {
        let cluster = try await TestCluster(discovery: .embedded, store: .sqlite, pairs: [("good", "hall")])
        try await cluster.whileRunning {
            #expect(try await cluster.waitUntilHealthy(["good"]))
            let adrestia = cluster.adrestia
            #expect(try await adrestia.request("GET", "/v1/pairs", headers: [:]).status == 401)
            #expect(try await adrestia.request("GET", "/v1/pairs", headers: ["Aesel-Cluster-Secret": Self.credentials.clusterSecret]).status == 200)
            #expect(try await adrestia.request("GET", "/v1/pairs", headers: ["Aesel-Cluster-Secret": Secret.generate()]).status == 401)
            #expect(try await adrestia.request("GET", "/health", headers: [:]).status == 200)
            try await cluster.createScene("hall-a", region: "hall")
            try await cluster.createScene("hall-b", region: "hall")

            let token = try await Self.credentials.token(role: .application, scenes: ["hall-a"])
            #expect(try await adrestia.request("GET", "/v1/pairs", headers: Self.bearer(token)).status == 403)
            let sender = try await AeselClient.connect(.init(gateways: [adrestia.url], sceneKey: "hall-a", deviceKey: "a-1", credential: .bearerToken(token)))
            let receiver = try await AeselClient.connect(.init(gateways: [adrestia.url], sceneKey: "hall-a", deviceKey: "a-2", credential: .bearerToken(token)))
            // The object call is forwarded with the token, and the pair checks it again.
            let created = try await adrestia.request("POST", "/v1/scene/hall-a/object", body: #"{"objects":[{"name":"lamp"}]}"#, headers: Self.bearer(token))
            let object = try #require((created.json["objects"] as? [[String: Any]])?.first?["key"] as? String)
            let other = try await cluster.createObject(in: "hall-b")
            #expect(try await adrestia.request("GET", "/v1/object/\(other)", headers: Self.bearer(token)).status == 403)
            #expect(try await adrestia.request("GET", "/v1/object/\(object)", headers: Self.bearer(token)).status == 200)
            let received = Task { () -> ObjectEvent? in
                for await event in receiver.updates { return event }
                return nil
            }
            // For two seconds: the first may come before the receiver's registration reaches the fan-out.
            for step in 1...40 {
                sender.send(ObjectEvent(sceneKey: "hall-a", objectKey: object, sequence: UInt64(step)))
                try await Task.sleep(for: .milliseconds(50))
            }
            await receiver.close()
            await sender.close()
            #expect(await received.value?.objectKey == object)

            let error = await #expect(throws: AeselClientError.self) {
                _ = try await AeselClient.connect(.init(gateways: [adrestia.url], sceneKey: "hall-b", deviceKey: "b-1", credential: .bearerToken(token)))
            }
            #expect((error?.underlyingError as? GatewayRefusal)?.status == 403, "\(String(describing: error))")
            let anonymous = await #expect(throws: AeselClientError.self) {
                _ = try await AeselClient.connect(.init(gateways: [adrestia.url], sceneKey: "hall-a", deviceKey: "a-3"))
            }
            #expect((anonymous?.underlyingError as? GatewayRefusal)?.status == 401)

            // A pair whose cluster secret is not the cluster's: Adrestia refuses its announcements.
            let stranger = try TestServer(
                "pair", dataFolder: NSTemporaryDirectory() + "aesel-stranger-\(UUID().uuidString)",
                arguments: ["--discovery", adrestia.url, "--pair-id", "stranger", "--region", "hall"], access: .credentials(try TestCredentials()))
            defer { stranger.stop() }
            try await Task.sleep(for: .seconds(2))
            #expect(try await cluster.pairStatus()["stranger"] == nil)
            #expect(try await cluster.pairStatus()["good"]?["healthy"] as? Bool == true)
        }
    }

    /// `aesel ARGUMENTS` run to its end: its status and what it printed, trimmed.
    static func aesel(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let (status, output) = try ServerProcess.runToExit(executable: ServerProcess.aeselExecutable(), arguments: arguments, timeout: .seconds(20))
        return (status, output.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test("Protected mode: each role refuses to start without what it lacks, naming it; with --insecure it starts and warns")
    func protectedMode() async throws {
        let folder = NSTemporaryDirectory() + "aesel-protected-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let stream = { (name: String) in "zmq+ipc://\(folder)/\(name).sock" }
        let credentials = "credentials: a token secret or API keys"
        let clusterSecret = "a cluster secret"
        let unsealed = "events are not sealed"
        let tokensOnly = ["--token-secret-file", Self.credentials.tokenSecretFile]
        let cases: [(arguments: [String], missing: [String], present: [String])] = [
            (["serve", "--host", "0.0.0.0"], [credentials], [clusterSecret, unsealed]),
            (["serve", "--host", "0.0.0.0", "--event-security", "plaintext"] + tokensOnly, [unsealed], [credentials]),
            (["pair"], [credentials, clusterSecret], [unsealed]),
            (["pair"] + tokensOnly, [clusterSecret], [credentials]),
            (["clyman", "--stream", stream("clyman")], [credentials], [clusterSecret]),
            (["clyman", "--stream", stream("plain"), "--event-security", "plaintext"] + tokensOnly, [unsealed], [credentials]),
            (["crazyivan", "--stream", stream("crazyivan")], [credentials], [clusterSecret]),
            (["adrestia"], [credentials, clusterSecret], [unsealed]),
        ]
        for (index, testCase) in cases.enumerated() {
            let ports = testCase.arguments[0] == "adrestia" ? ["--http-port", "0"] : ["--http-port", "0", "--udp-port", "0"]
            let arguments = testCase.arguments + ports + ["--data", "\(folder)/\(index)"]
            let refused = try Self.aesel(arguments)
            #expect(refused.status != 0, "\(arguments)")
            #expect(refused.output.contains("protected mode") && refused.output.contains("--insecure"), "\(arguments): \(refused.output)")
            for missing in testCase.missing { #expect(refused.output.contains(missing), "\(arguments): \(refused.output)") }
            for present in testCase.present { #expect(!refused.output.contains(present), "\(arguments): \(refused.output)") }

            let log = "\(folder)/\(index).log"
            // A CrazyIvan alone is ready once its CLyman's stream answers.
            let partner = try testCase.arguments[0] == "crazyivan"
                ? ServerProcess(
                    executable: ServerProcess.aeselExecutable(),
                    arguments: ["clyman", "--stream", testCase.arguments[2], "--insecure", "--data", "\(folder)/\(index)"] + ports, errorLog: log + ".clyman")
                : nil
            let started = try ServerProcess(executable: ServerProcess.aeselExecutable(), arguments: arguments + ["--insecure"], errorLog: log)
            started.stop()
            partner?.stop()
            let warning = try String(contentsOfFile: log, encoding: .utf8)
            #expect(warning.contains("INSECURE") && warning.contains("--insecure"), "\(arguments): \(warning)")
            for missing in testCase.missing { #expect(warning.contains(missing), "\(arguments): \(warning)") }
        }
        // On loopback with nothing configured, serve runs open and says so.
        let log = "\(folder)/open.log"
        let open = try ServerProcess(
            executable: ServerProcess.aeselExecutable(), arguments: ["serve", "--http-port", "0", "--udp-port", "0", "--data", "\(folder)/open"], errorLog: log)
        open.stop()
        let notice = try String(contentsOfFile: log, encoding: .utf8)
        #expect(notice.contains("protected mode") && notice.contains("runs open"), "\(notice)")
        #expect(!notice.contains("INSECURE"))
    }

    @Test("aesel token, aesel api-key and aesel secret make credentials a server takes")
    func commandLine() async throws {
        let server = try TestServer(access: .credentials(Self.credentials))
        defer { server.stop() }
        let issued = try Self.aesel(["token", "--role", "application", "--scene", "cli-*", "--expires", "10m", "--token-secret-file", Self.credentials.tokenSecretFile])
        #expect(issued.status == 0, "\(issued.output)")
        #expect(issued.output.split(separator: ".").count == 3, "a JWT: \(issued.output)")
        #expect(try await server.request("PUT", "/v1/scene/cli-1", body: #"{"scenes":[{"name":"c"}]}"#, headers: Self.bearer(issued.output)).status == 200)
        #expect(try await server.request("PUT", "/v1/scene/other", body: #"{"scenes":[{"name":"c"}]}"#, headers: Self.bearer(issued.output)).status == 403)
        let admin = try Self.aesel(["token", "--role", "admin", "--token-secret-file", Self.credentials.tokenSecretFile])
        #expect(try await server.request("GET", "/metrics", headers: Self.bearer(admin.output)).status == 200)
        for bad in [["--role", "application"], ["--role", "admin", "--scene", "x"], ["--role", "root"], ["--role", "admin", "--expires", "soon"]] {
            #expect(try Self.aesel(["token", "--token-secret-file", Self.credentials.tokenSecretFile] + bad).status != 0, "\(bad)")
        }
        #expect(try Self.aesel(["token", "--role", "admin"]).output.contains("no token secret"))

        let secret = try Self.aesel(["secret"])
        let another = try Self.aesel(["secret"])
        #expect(secret.status == 0 && secret.output.count == 43 && secret.output != another.output)

        let keys = NSTemporaryDirectory() + "aesel-keys-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: keys) }
        let key = try Self.aesel(["api-key", "--name", "cli", "--role", "application", "--scene", "keyed", "--api-keys-file", keys])
        #expect(key.status == 0 && key.output.hasPrefix("aesel_"), "\(key.output)")
        #expect(!(try String(contentsOfFile: keys, encoding: .utf8)).contains(key.output), "the file holds the hash, not the key")
        let keyed = try TestServer(arguments: ["--api-keys-file", keys], access: .open)
        defer { keyed.stop() }
        #expect(try await keyed.request("PUT", "/v1/scene/keyed", body: #"{"scenes":[{"name":"k"}]}"#, headers: ["X-API-Key": key.output]).status == 200)
        #expect(try await keyed.request("GET", "/v1/scene/keyed", headers: ["Authorization": "Bearer " + key.output]).status == 200)
        #expect(try await keyed.request("GET", "/v1/scene/keyed").status == 401)
    }
}
