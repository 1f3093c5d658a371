import AeselTesting
import AeselClient
import AeselModel
import Foundation
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Adrestia with real pairs in their own processes: discovery, health probes, the scene-to-pair mapping
/// and failover (issue 5).
@Suite("Cluster: Adrestia, pairs and failover", .timeLimit(.minutes(3)))
struct ClusterTests {
    /// Three clients of `scene` through Adrestia; the first sends.
    static func clients(of scene: String, through cluster: TestCluster) async throws -> [AeselClient] {
        var clients: [AeselClient] = []
        for name in ["sender", "a", "b"] {
            clients.append(try await AeselClient.connect(.init(gateways: [cluster.adrestia.url], sceneKey: scene, deviceKey: "\(scene)-\(name)", silenceTimeout: .milliseconds(200), credential: admin)))
        }
        return clients
    }

    /// Sends numbered updates every 10 ms while `body` runs, and returns the numbers each receiver got.
    static func stream(
        from sender: AeselClient, to receivers: [AeselClient], object: String, scene: String, count: Int, during body: @escaping @Sendable (Int) async throws -> Void
    ) async throws -> [[UInt64]] {
        let collectors = receivers.map { receiver in
            Task {
                var numbers: [UInt64] = []
                for await event in receiver.updates {
                    numbers.append(event.sequence)
                    if event.sequence == UInt64(count) { break }
                }
                return numbers
            }
        }
        for step in 1...count {
            sender.send(ObjectEvent(sceneKey: scene, objectKey: object, sequence: UInt64(step)))
            try await body(step)
            try await Task.sleep(for: .milliseconds(10))
        }
        // Whatever has not arrived a second after the last send is lost.
        try await Task.sleep(for: .seconds(1))
        for collector in collectors { collector.cancel() }
        var received: [[UInt64]] = []
        for collector in collectors { received.append(await collector.value) }
        return received
    }

    @Test("etcd and PostgreSQL: kill -9 a pair mid-stream; its scene's devices keep receiving through the other pair of the region")
    func killedPairFailsOver() async throws {
        let cluster = try await TestCluster(discovery: .etcd, store: .postgres, pairs: [("east-1", "east"), ("east-2", "east"), ("west-1", "west")])
        let allHealthy = try await cluster.waitUntilHealthy(["east-1", "east-2", "west-1"])
        #expect(allHealthy)
        try await cluster.createScene("harbour", region: "east")
        let clients = try await Self.clients(of: "harbour", through: cluster)
        let before = try #require(try await cluster.endpoint(of: "harbour"))
        #expect(before.pair.hasPrefix("east-"), "an east scene goes to an east pair")
        #expect(clients[0].endpoint.port == before.port)
        let survivor = before.pair == "east-1" ? "east-2" : "east-1"

        // 2.5 s of updates, the pair killed after 0.5 s. How long the move takes is `aesel bench --failover`'s
        // to measure; here it only has to happen while the stream lasts.
        let received = try await Self.stream(from: clients[0], to: Array(clients[1...]), object: try await cluster.createObject(in: "harbour"), scene: "harbour", count: 250) { step in
            if step == 50 { cluster.kill(before.pair) }
        }
        for numbers in received {
            #expect(numbers.first == 1, "updates flowed before the kill")
            #expect(numbers.last == 250, "updates flow through the new pair after the kill")
            #expect(numbers == numbers.sorted(), "in order")
            #expect(numbers.contains { $0 < 50 } && numbers.contains { $0 > 50 && $0 < 250 })
        }
        let after = try #require(try await cluster.endpoint(of: "harbour"))
        #expect(after.pair == survivor, "moved within the region, not to west-1")
        #expect(clients[0].failovers == 1)
        #expect(clients[0].endpoint.port == after.port)
        // The dead pair stops renewing its lease and disappears.
        let gone = try await eventually(timeout: .seconds(10)) { try await cluster.pairStatus()[before.pair] == nil }
        #expect(gone)
        let clusterScenes = try await cluster.adrestia.request("GET", "/cluster/\(survivor)")
        #expect(clusterScenes.status == 200)

        // A region whose only pair dies keeps its scenes: no other region takes them unless allowed.
        try await cluster.createScene("meadow", region: "west")
        #expect(try await cluster.endpoint(of: "meadow")?.pair == "west-1")
        cluster.kill("west-1")
        let stranded = try await eventually(timeout: .seconds(10)) { try await cluster.adrestia.request("GET", "/v1/scene/meadow/endpoint").status == 503 }
        #expect(stranded, "503 while the region has no healthy pair")
        for client in clients { await client.close() }
        await cluster.stop()
    }

    @Test("--cross-region-failover: a region's last pair dies and its scene moves to another region; /v1/register finds the scene's pair from the body")
    func crossRegionFailover() async throws {
        let cluster = try await TestCluster(discovery: .embedded, store: .sqlite, pairs: [("w", "west"), ("e", "east")], adrestiaArguments: ["--cross-region-failover"])
        let allHealthy = try await cluster.waitUntilHealthy(["w", "e"])
        #expect(allHealthy)
        try await cluster.createScene("plaza", region: "west")
        let registration = try await cluster.adrestia.request(
            "POST", "/v1/register", body: #"{"scenes":[{"key":"plaza","devices":[{"key":"kiosk","hostname":"127.0.0.1","port":9}]}]}"#)
        #expect(registration.json["err_code"] as? Int == 100)
        #expect(registration.json["pair"] as? String == "w")
        cluster.kill("w")
        let moved = try await eventually(timeout: .seconds(10)) { try await cluster.endpoint(of: "plaza")?.pair == "e" }
        #expect(moved)
        await cluster.stop()
    }

    @Test("embedded discovery: a hung pair (SIGSTOP) counts as down, and is used again once it answers")
    func hungPairIsDown() async throws {
        let cluster = try await TestCluster(discovery: .embedded, store: .sqlite, pairs: [("one", "north"), ("two", "north")])
        let allHealthy = try await cluster.waitUntilHealthy(["one", "two"])
        #expect(allHealthy)
        try await cluster.createScene("hall", region: "north")
        let clients = try await Self.clients(of: "hall", through: cluster)
        let before = try #require(try await cluster.endpoint(of: "hall"))
        let other = before.pair == "one" ? "two" : "one"

        cluster.kill(before.pair, signal: SIGSTOP)
        let down = try await eventually(timeout: .seconds(10)) { try await cluster.pairStatus()[before.pair]?["healthy"] as? Bool == false }
        #expect(down, "a hung pair answers no probe")
        let moved = try await eventually(timeout: .seconds(10)) { try await cluster.endpoint(of: "hall")?.pair == other }
        #expect(moved)
        let received = try await Self.stream(from: clients[0], to: Array(clients[1...]), object: try await cluster.createObject(in: "hall"), scene: "hall", count: 150) { _ in }
        for numbers in received { #expect(numbers.last == 150, "the devices moved to the healthy pair") }

        cluster.kill(before.pair, signal: SIGCONT)
        let back = try await eventually(timeout: .seconds(10)) { try await cluster.pairStatus()[before.pair]?["healthy"] as? Bool == true }
        #expect(back)
        // The revived pair holds no scene now, so the next new scene goes to it.
        try await cluster.createScene("annex", region: "north")
        let annex = try await AeselClient.connect(.init(gateways: [cluster.adrestia.url], sceneKey: "annex", deviceKey: "annex-1", credential: admin))
        let annexPair = try await cluster.endpoint(of: "annex")?.pair
        #expect(annexPair == before.pair)
        await annex.close()
        for client in clients { await client.close() }
        await cluster.stop()
    }

    /// With etcd, so that the pairs find the restarted Adrestia on its new port.
    @Test("etcd and PostgreSQL: an Adrestia restart loses no mapping; /cluster lists a pair's scenes")
    func restartKeepsMapping() async throws {
        let cluster = try await TestCluster(discovery: .etcd, store: .postgres, pairs: [("p1", "south"), ("p2", "south")])
        let allHealthy = try await cluster.waitUntilHealthy(["p1", "p2"])
        #expect(allHealthy)
        var assigned: [String: String] = [:]
        for scene in ["s1", "s2", "s3", "s4"] {
            try await cluster.createScene(scene, region: "south")
            let registration = try await cluster.adrestia.request(
                "POST", "/v1/scene/\(scene)/register",
                body: #"{"scenes":[{"devices":[{"key":"d-\#(scene)","hostname":"127.0.0.1","port":9}]}]}"#)
            #expect(registration.json["region"] as? String == "south")
            assigned[scene] = try #require(registration.json["pair"] as? String)
        }
        #expect(Set(assigned.values) == ["p1", "p2"], "spread by load")

        try cluster.restartAdrestia()
        // Asked at once, before the new process has judged the pairs: it waits for its verdict
        // rather than moving scenes off pairs that are fine.
        for (scene, pair) in assigned {
            let now = try await cluster.endpoint(of: scene)?.pair
            #expect(now == pair)
        }
        let healthyAgain = try await cluster.waitUntilHealthy(["p1", "p2"])
        #expect(healthyAgain)
        let listed = try await cluster.adrestia.request("GET", "/cluster/p1")
        #expect(listed.status == 200)
        let unknown = try await cluster.adrestia.request("GET", "/cluster/nobody")
        #expect(unknown.status == 416, "the original's answer for a cluster without scenes")
        await cluster.stop()
    }

    @Test("Adrestia refuses bad announcements, unknown scenes and its own probe scenes, and answers 503 without pairs")
    func badInputAtTheGateway() async throws {
        let cluster = try await TestCluster(discovery: .embedded, store: .sqlite, pairs: [])
        for body in [
            #"{"pair":"x","region":"r","clyman_udp":"127.0.0.1:70000","clyman_http":"http://127.0.0.1:1","crazyivan_http":"http://127.0.0.1:1"}"#,
            #"{"pair":"x","region":"r","clyman_udp":"0.0.0.0:9000","clyman_http":"http://127.0.0.1:1","crazyivan_http":"http://127.0.0.1:1"}"#,
            #"{"pair":"x","region":"r","clyman_udp":"127.0.0.1:9000","clyman_http":"not a url","crazyivan_http":"http://127.0.0.1:1"}"#,
            #"{"pair":"x"}"#,
            "not json",
        ] {
            let answer = try await cluster.adrestia.request("PUT", "/v1/pairs/x", body: body)
            #expect(answer.status == 400, "announcement \(body)")
            #expect(answer.json["err_msg"] as? String != nil)
        }
        #expect(try await cluster.pairStatus().isEmpty, "nothing refused was listed")
        #expect(try await cluster.adrestia.request("GET", "/v1/scene/nowhere/endpoint").status == 404)
        #expect(try await cluster.adrestia.request("POST", "/v1/scene/aesel-probe-x/register", body: "{}").status == 403)
        #expect(try await cluster.adrestia.request("DELETE", "/v1/scene/aesel-probe-x").status == 403)
        let noPair = try await cluster.adrestia.request("PUT", "/v1/scene/lonely", body: "{}")
        #expect(noPair.status == 503, "no healthy pair to create the scene on")
        #expect(noPair.json["err_code"] as? Int == 120)
        await cluster.stop()
    }

    /// JSON devices get no scene-moved notice: only the keepalives tell this one that its pair died.
    @Test("A send-only JSON device stays on its pair through seconds of quiet, with no failed report, and moves when the pair is killed")
    func sendOnlyDeviceFailsOverOnSilence() async throws {
        let cluster = try await TestCluster(discovery: .embedded, store: .sqlite, pairs: [("left", "hall"), ("right", "hall")])
        let allHealthy = try await cluster.waitUntilHealthy(["left", "right"])
        #expect(allHealthy)
        try await cluster.createScene("library", region: "hall")
        // A second of silence, so that a pair starved of CPU on a loaded machine is not taken for dead.
        let client = try await AeselClient.connect(
            .init(gateways: [cluster.adrestia.url], sceneKey: "library", deviceKey: "reader", format: .json, silenceTimeout: .seconds(1), credential: admin)
        )
        let before = try #require(try await cluster.endpoint(of: "library"))
        let object = try await cluster.createObject(in: "library")
        // Four seconds of sending and hearing nothing back: before keepalives, a report every second.
        for step in 1...80 {
            client.send(ObjectEvent(sceneKey: "library", objectKey: object, sequence: UInt64(step)))
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(client.failedReports == 0)
        #expect(client.failovers == 0)
        #expect(client.endpoint.port == before.port)
        #expect(try await cluster.adrestia.metrics()["aesel_failed_reports_total"] ?? 0 == 0, "Adrestia heard no report")

        cluster.kill(before.pair)
        let survivor = before.pair == "left" ? "right" : "left"
        let moved = await eventually(timeout: .seconds(10)) { client.failovers == 1 }
        #expect(moved)
        let after = try #require(try await cluster.endpoint(of: "library"))
        #expect(after.pair == survivor)
        #expect(client.endpoint.port == after.port)
        #expect(client.failedReports >= 1)
        #expect(try await cluster.adrestia.metrics()["aesel_failed_reports_total"] ?? 0 >= 1)
        await client.close()
        await cluster.stop()
    }

    /// The devices' silence timeout is a minute here: only the new pair's notice can move them in time.
    @Test("After a failover the new pair tells binary devices, which ask for their endpoint at once")
    func moveNoticeIsFollowed() async throws {
        let cluster = try await TestCluster(discovery: .embedded, store: .sqlite, pairs: [("left", "hall"), ("right", "hall")])
        let allHealthy = try await cluster.waitUntilHealthy(["left", "right"])
        #expect(allHealthy)
        try await cluster.createScene("stage", region: "hall")
        var clients: [AeselClient] = []
        for name in ["sender", "a", "b"] {
            clients.append(try await AeselClient.connect(.init(gateways: [cluster.adrestia.url], sceneKey: "stage", deviceKey: name, silenceTimeout: .seconds(60), credential: admin)))
        }
        let before = try #require(try await cluster.endpoint(of: "stage"))
        let received = try await Self.stream(from: clients[0], to: Array(clients[1...]), object: try await cluster.createObject(in: "stage"), scene: "stage", count: 250) { step in
            if step == 50 { cluster.kill(before.pair) }
        }
        for numbers in received {
            #expect(numbers.last == 250, "the sender followed the notice long before its silence timeout")
        }
        #expect(clients[0].failovers == 1)
        for client in clients { await client.close() }
        await cluster.stop()
    }
}
