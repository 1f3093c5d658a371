import AeselLocalCluster
import AeselTesting
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `aesel cluster` as a user runs it: a child process that starts etcd, PostgreSQL, two Adrestia instances
/// and pairs in two regions, and leaves nothing running when it stops.
@Suite("aesel cluster", .serialized, .timeLimit(.minutes(3)))
struct LocalClusterTests {
    static let pairs: Set<String> = ["east-1", "east-2", "west-1"]

    static func startCluster() throws -> ServerProcess {
        try ServerProcess(executable: ServerProcess.aeselExecutable(), arguments: ["cluster", "--pairs", "east=2,west=1"], timeout: .seconds(120))
    }

    @Test("both Adrestia instances list every pair healthy in two regions and share one store; SIGINT stops everything")
    func wholeClusterStopsOnSIGINT() async throws {
        let cluster = try Self.startCluster()
        let adrestia = try #require(cluster.endpoints["adrestia"]).split(separator: ",").map(String.init)
        #expect(adrestia.count == 2)
        #expect(cluster.endpoints["pairs"]?.split(separator: ",").map(String.init).sorted() == Self.pairs.sorted())
        let key = try String(contentsOfFile: try #require(cluster.endpoints["admin_key_file"]), encoding: .utf8)

        // The cluster runs protected: nothing answers without a credential but /health.
        #expect(try await Self.request("GET", adrestia[0] + "/v1/pairs", key: nil).status == 401)
        #expect(try await Self.request("GET", adrestia[0] + "/health", key: nil).status == 200)

        // Both instances list every pair healthy, in two regions, and name the same leader.
        var leaders: Set<String> = []
        for url in adrestia {
            let answer = try await Self.request("GET", url + "/v1/pairs", key: key).json
            let listed = answer["pairs"] as? [[String: Any]] ?? []
            #expect(Set(listed.compactMap { $0["pair"] as? String }) == Self.pairs, "\(url)")
            #expect(listed.allSatisfy { $0["healthy"] as? Bool == true }, "\(url): \(listed)")
            #expect(Set(listed.compactMap { $0["region"] as? String }) == ["east", "west"], "\(url)")
            leaders.insert((answer["leader"] as? [String: Any])?["instance"] as? String ?? "none")
        }
        #expect(leaders.count == 1 && leaders.isSubset(of: ["adrestia-1", "adrestia-2"]), "\(leaders)")

        // A scene made through one Adrestia is read through the other: one store behind both.
        let scene = "local-\(UUID().uuidString.prefix(8).lowercased())"
        let created = try await Self.request("PUT", adrestia[0] + "/v1/scene/\(scene)", body: #"{"scenes":[{"name":"Lobby","region":"east"}]}"#, key: key)
        #expect(created.status == 200)
        let read = try await Self.request("GET", adrestia[1] + "/v1/scene/\(scene)", key: key)
        #expect(read.status == 200)
        #expect((read.json["scenes"] as? [[String: Any]])?.first?["name"] as? String == "Lobby")

        let descendants = Self.descendants(of: cluster.pid)
        let names = Set(descendants.map(\.name))
        #expect(names.isSuperset(of: ["etcd", "postgres", "aesel"]), "\(descendants)")
        #expect(descendants.filter { $0.parent == cluster.pid }.count == 2 + 2 + Self.pairs.count, "\(descendants)")

        let status = cluster.stop(signal: SIGINT)
        #expect(cluster.process.terminationReason == .exit && status == 0)
        #expect(await eventually { Self.running(descendants).isEmpty }, "still running: \(Self.running(descendants))")
        for service in ["etcd", "store"] {
            let port = try #require(cluster.endpoints[service].flatMap { URLComponents(string: $0)?.port })
            #expect(!Self.accepts(port: port), "\(service) still listens on \(port)")
        }
        #expect(!FileManager.default.fileExists(atPath: try #require(cluster.endpoints["files"])))
    }

    @Test("every child dies with `aesel cluster` when it is killed with SIGKILL")
    func childrenDieWithTheirParent() async throws {
        let cluster = try Self.startCluster()
        let files = try #require(cluster.endpoints["files"])
        defer { try? FileManager.default.removeItem(atPath: files) }
        let descendants = Self.descendants(of: cluster.pid)
        #expect(descendants.count >= 2 + 2 + Self.pairs.count)
        cluster.stop(signal: SIGKILL)
        #expect(await eventually(timeout: .seconds(20)) { Self.running(descendants).isEmpty }, "still running: \(Self.running(descendants))")
    }

    @Test("a bad --pairs is refused before anything starts")
    func badPairs() throws {
        let (status, output) = try ServerProcess.runToExit(executable: ServerProcess.aeselExecutable(), arguments: ["cluster", "--pairs", "east=0"])
        #expect(status != 0)
        #expect(output.contains("cluster.pairs"), "\(output)")
    }

    struct Descendant: CustomStringConvertible {
        var pid: Int32
        var parent: Int32
        var name: String
        var description: String { "\(name)[\(pid)]" }
    }

    /// Every process below `root`, from /proc.
    static func descendants(of root: Int32) -> [Descendant] {
        let all = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init).compactMap(status)
        var found: [Descendant] = []
        var parents: Set<Int32> = [root]
        while !parents.isEmpty {
            let next = all.filter { parents.contains($0.parent) }
            found += next
            parents = Set(next.map(\.pid))
        }
        return found
    }

    /// `pid`'s parent and name, nil once it is gone; a zombie (ended, not yet reaped) counts as gone.
    static func status(_ pid: Int32) -> Descendant? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")")
        else { return nil }
        // "PID (NAME) STATE PPID ...": the name may hold spaces and parentheses.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 1, fields[0] != "Z", let parent = Int32(fields[1]) else { return nil }
        return Descendant(pid: pid, parent: parent, name: String(stat[stat.index(after: open)..<close]))
    }

    /// Those of `processes` still running (the same PID and name).
    static func running(_ processes: [Descendant]) -> [Descendant] {
        processes.filter { status($0.pid)?.name == $0.name }
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = UDPSocket.loopback(port: UInt16(port))
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// - Parameter key: the cluster's admin API key (from the ready line's `admin_key_file`); nil for none.
    static func request(_ method: String, _ url: String, body: String? = nil, key: String?) async throws -> (status: Int, json: [String: Any]) {
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        if let key { request.headers.add(name: "X-API-Key", value: key) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 22)
        return (Int(response.status.code), (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:])
    }
}
