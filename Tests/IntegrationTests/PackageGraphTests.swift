import Foundation
import Testing

/// The target graph as Package.swift declares it (`swift package dump-package`): the layering that
/// docs/architecture.md draws holds.
@Suite("Package graph", .timeLimit(.minutes(2)))
struct PackageGraphTests {
    /// Each target's name and the targets and products it depends on.
    static func targets() throws -> [String: Set<String>] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // A scratch path of its own: `swift test` holds the lock of the package's own .build meanwhile.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("aesel-graph-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        process.arguments = ["swift", "package", "--package-path", root.path, "--scratch-path", scratch, "dump-package"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Never wait on it for ever: a blocked read here would hold a thread of the shared pool.
        DispatchQueue.global().asyncAfter(deadline: .now() + 60) { if process.isRunning { process.terminate() } }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let package = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var graph: [String: Set<String>] = [:]
        for target in package["targets"] as? [[String: Any]] ?? [] {
            let name = try #require(target["name"] as? String)
            var dependencies = Set<String>()
            for dependency in target["dependencies"] as? [[String: Any]] ?? [] {
                // {"byName": ["X", null]}, {"target": ["X", null]} or {"product": ["X", "package", ...]}.
                for value in dependency.values {
                    if let first = (value as? [Any])?.first as? String { dependencies.insert(first) }
                }
            }
            graph[name] = dependencies
        }
        return graph
    }

    /// `target` and everything it depends on, directly or not, among the package's own targets.
    static func closure(of target: String, in graph: [String: Set<String>]) -> Set<String> {
        var seen: Set<String> = []
        var queue = [target]
        while let next = queue.popLast() {
            for dependency in graph[next] ?? [] where graph[dependency] != nil && seen.insert(dependency).inserted {
                queue.append(dependency)
            }
        }
        return seen
    }

    @Test("Adrestia links neither half nor a stream back end; no server target links the test support or the local cluster")
    func layering() throws {
        let graph = try Self.targets()
        let adrestia = Self.closure(of: "Adrestia", in: graph)
        #expect(adrestia.isSuperset(of: ["AeselStore", "AeselHTTP", "AeselWire", "AeselModel"]), "the graph was read")
        for forbidden in ["CLyman", "CrazyIvan", "AeselStreamZeroMQ", "AeselStreamKafka", "AeselStreamUDP", "AeselServer"] {
            #expect(!adrestia.contains(forbidden), "Adrestia reaches \(forbidden)")
        }
        for server in ["AeselServer", "Adrestia", "CLyman", "CrazyIvan", "AeselClient", "AeselStore", "AeselHTTP"] {
            #expect(!Self.closure(of: server, in: graph).contains("AeselTesting"), "\(server) reaches AeselTesting")
        }
        // The child processes of `aesel cluster` and the tests are no part of any server, store or stream.
        let servers = graph.keys.filter { ($0.hasPrefix("AeselStore") || $0.hasPrefix("AeselStream")) && !$0.hasSuffix("Tests") } + [
            "AeselServer", "Adrestia", "CLyman", "CrazyIvan", "AeselHTTP", "AeselClient",
        ]
        #expect(servers.count > 10, "the graph was read")
        for server in servers {
            #expect(!Self.closure(of: server, in: graph).contains("AeselLocalCluster"), "\(server) reaches AeselLocalCluster")
        }
        #expect(graph["AeselLocalCluster"] != nil && graph["AeselTesting"]?.contains("AeselLocalCluster") == true)
        // Authentication is no HTTP's: the command line and the clients' tests use it without a server.
        #expect(Self.closure(of: "AeselAuth", in: graph) == ["AeselModel"])
        // The model is the bottom: it depends on no other target of ours.
        #expect(Self.closure(of: "AeselModel", in: graph).isEmpty)
        // Each SQL back end is its own target over the shared store layer.
        #expect(graph["AeselStoreSQLite"]?.contains("AeselStoreSQL") == true)
        #expect(graph["AeselStorePostgres"]?.contains("AeselStoreSQL") == true)
        #expect(!Self.closure(of: "AeselStoreSQLite", in: graph).contains("AeselStorePostgres"))
    }
}
