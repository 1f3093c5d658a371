import AeselTesting
import Foundation
import Testing

/// Locks in a cluster (issue 11): the store holds them, and the pair that serves a scene enforces them on
/// its UDP path whichever process took or released them, and after a failover.
@Suite("Cluster locks", .timeLimit(.minutes(3)))
struct ClusterLockTests {
    static let locked = #"aesel_udp_dropped_total{reason="locked"}"#

    /// An update of `key` in the scene `dock` whose transform carries `mark` as its x.
    static func update(_ key: String, mark: Int) -> String {
        #"{"msg_type":1,"key":"\#(key)","scene":"dock","transform":[1,0,0,\#(mark),0,1,0,0,0,0,1,0,0,0,0,1]}"#
    }

    /// The marks of the updates of `key` that `device` receives until nothing more arrives.
    static func marks(_ device: TestDevice, of key: String) -> [Int] {
        var marks: [Int] = []
        while let datagram = device.receive() {
            guard let json = try? JSONSerialization.jsonObject(with: Data(datagram)) as? [String: Any], json["key"] as? String == key,
                json["msg_type"] as? Int == 1, let transform = json["transform"] as? [Double], transform.count == 16
            else { continue }
            marks.append(Int(transform[3]))
        }
        return marks
    }

    /// A call through the gateway, tried again while no healthy pair answers it (502, 503): a loaded
    /// machine can make pairs miss probes for a moment.
    static func throughGateway(_ cluster: TestCluster, _ method: String, _ path: String) async throws -> Int {
        var status = 0
        _ = try await eventually(timeout: .seconds(10)) {
            status = try await cluster.adrestia.request(method, path).status
            return status != 502 && status != 503
        }
        return status
    }

    @Test("PostgreSQL: a lock or unlock through Adrestia or through the other pair holds on the scene's pair's UDP path, and a failover carries it")
    func locksAcrossPairs() async throws {
        let cluster = try await TestCluster(discovery: .embedded, store: .postgres, pairs: [("east-1", "east"), ("east-2", "east")])
        let allHealthy = try await cluster.waitUntilHealthy(["east-1", "east-2"])
        #expect(allHealthy)
        // Adrestia's probe objects cannot be locked through it: the probes would be dropped.
        var probeObject: String?
        _ = try await eventually(timeout: .seconds(10)) {
            let probes = try await cluster.adrestia.request("POST", "/v1/object/query", body: #"{"objects":[{"scene":"aesel-probe-east-1"}]}"#)
            probeObject = (probes.json["objects"] as? [[String: Any]])?.first?["key"] as? String
            return probeObject != nil
        }
        #expect(try await Self.throughGateway(cluster, "GET", "/v1/object/\(try #require(probeObject))/lock?device=intruder") == 403)
        try await cluster.createScene("dock", region: "east")
        let owner = try TestDevice("owner")
        let other = try TestDevice("other")
        let watcher = try TestDevice("watcher")
        for device in [owner, other, watcher] { try await cluster.adrestia.register(device, in: "dock") }
        let serving = try #require(try await cluster.endpoint(of: "dock"))
        let elsewhere = serving.pair == "east-1" ? "east-2" : "east-1"
        let servingPair = try #require(cluster.pairs[serving.pair])
        let otherPair = try #require(cluster.pairs[elsewhere])
        let port = UInt16(serving.port)
        let key = try await cluster.createObject(in: "dock")
        watcher.drain()

        // Through Adrestia, which sends a lock call to the pair of the object's scene.
        #expect(try await Self.throughGateway(cluster, "GET", "/v1/object/\(key)/lock?device=owner") == 200)
        other.send(Self.update(key, mark: 1), to: port)
        owner.send(Self.update(key, mark: 2), to: port)
        #expect(Self.marks(watcher, of: key) == [2])
        #expect(try await servingPair.metrics()[Self.locked] == 1)

        // Released through the other pair: the scene's pair lets the other device through again.
        #expect(try await otherPair.request("DELETE", "/v1/object/\(key)/lock?device=owner").status == 200)
        let released = await eventually {
            other.send(Self.update(key, mark: 3), to: port)
            return Self.marks(watcher, of: key).contains(3)
        }
        #expect(released)

        // Taken through the other pair: the scene's pair refuses the other device again.
        #expect(try await otherPair.request("GET", "/v1/object/\(key)/lock?device=owner").status == 200)
        let droppedBefore = try await servingPair.metrics()[Self.locked] ?? 0
        let enforced = try await eventually {
            other.send(Self.update(key, mark: 4), to: port)
            return try await servingPair.metrics()[Self.locked] ?? 0 > droppedBefore
        }
        #expect(enforced)
        watcher.drain()
        other.send(Self.update(key, mark: 5), to: port)
        owner.send(Self.update(key, mark: 6), to: port)
        #expect(Self.marks(watcher, of: key) == [6])

        // Released, and taken by the other device, through the scene's pair: what the other pair last did
        // itself no longer holds.
        #expect(try await Self.throughGateway(cluster, "DELETE", "/v1/object/\(key)/lock?device=owner") == 200)
        #expect(try await Self.throughGateway(cluster, "GET", "/v1/scene/dock/object/\(key)/lock?device=other") == 200)

        // Failover: the other pair takes the scene and enforces the store's lock from its first event on.
        cluster.kill(serving.pair)
        let moved = try await eventually(timeout: .seconds(10)) { try await cluster.endpoint(of: "dock")?.pair == elsewhere }
        #expect(moved)
        let newPort = otherPair.udpPort
        // The holder's updates go through the new pair once it has loaded the scene's registrations.
        let serves = await eventually(timeout: .seconds(10)) {
            other.send(Self.update(key, mark: 7), to: newPort)
            return Self.marks(watcher, of: key).contains(7)
        }
        #expect(serves)
        let refusedBefore = try await otherPair.metrics()[Self.locked] ?? 0
        owner.send(Self.update(key, mark: 8), to: newPort)
        other.send(Self.update(key, mark: 9), to: newPort)
        #expect(Self.marks(watcher, of: key) == [9])
        #expect(try await otherPair.metrics()[Self.locked] == refusedBefore + 1)

        // An unlock through Adrestia reaches the scene's new pair.
        #expect(try await Self.throughGateway(cluster, "DELETE", "/v1/object/\(key)/lock?device=other") == 200)
        owner.send(Self.update(key, mark: 10), to: newPort)
        #expect(Self.marks(watcher, of: key) == [10])
        for device in [owner, other, watcher] { device.close() }
        await cluster.stop()
    }
}
