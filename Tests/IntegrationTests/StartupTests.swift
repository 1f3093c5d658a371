import AeselTesting
import AeselModel
import AeselStore
import AeselStorePostgres
import Foundation
import Testing

/// Processes that open one store at the same moment, as a service manager or a script starts them.
@Suite("Start-up races", .timeLimit(.minutes(4)))
struct StartupTests {
    /// Starts servers at the same instant, each on its own thread; stops the ones that started if any fails.
    static func startTogether(_ configurations: [(command: String, folder: String?, arguments: [String])]) async throws -> [TestServer] {
        let results = await withTaskGroup(of: (Int, Result<TestServer, any Error>).self) { group in
            for (index, configuration) in configurations.enumerated() {
                group.addTask {
                    await Task.detached {
                        (index, Result { try TestServer(configuration.command, dataFolder: configuration.folder, arguments: configuration.arguments) })
                    }.value
                }
            }
            var results: [(Int, Result<TestServer, any Error>)] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }.map(\.1)
        }
        let started = results.compactMap { try? $0.get() }
        if started.count < results.count {
            for server in started { server.stop() }
            for case .failure(let error) in results { throw error }
        }
        return started
    }

    @Test("CLyman and CrazyIvan started at the same instant on a fresh data folder, 20 times: both start and events flow")
    func halvesStartedTogether() async throws {
        for attempt in 1...20 {
            let folder = NSTemporaryDirectory() + "aesel-together-\(UUID().uuidString)"
            let stream = "zmq+ipc://" + folder + "/s.sock"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let servers = try await Self.startTogether([("clyman", folder, ["--stream", stream]), ("crazyivan", folder, ["--stream", stream])])
            let (clyman, crazyIvan) = (servers[0], servers[1])
            defer {
                crazyIvan.stop()
                clyman.stop()
            }
            #expect(try await clyman.request("GET", "/health").status == 200, "attempt \(attempt)")
            #expect(try await crazyIvan.request("GET", "/health").status == 200, "attempt \(attempt)")
            let devices = try await crazyIvan.devices("sender", "receiver", registeredIn: "together")
            let object = try await clyman.createObject(in: "together")
            devices[1].drain()
            devices[0].send(#"{"msg_type":1,"key":"\#(object)","scene":"together","seq":1}"#, to: clyman.udpPort)
            #expect(devices[1].receiveEvent()?.sequence == 1, "attempt \(attempt): the event flows")
        }
    }

    @Test("Three servers migrating one fresh PostgreSQL database at once all start, on the whole schema")
    func concurrentPostgresMigrations() async throws {
        let (url, remove) = try await TestStore.postgresDatabase()
        let servers = try await Self.startTogether(Array(repeating: ("serve", nil, ["--store", url]), count: 3))
        defer {
            for server in servers { server.stop() }
        }
        // Each table is there: what one server writes, the others read.
        let scene = try await servers[0].request("PUT", "/v1/scene/shared", body: #"{"scenes":[{"name":"shared"}]}"#)
        #expect(scene.status == 200)
        let devices = try await servers[1].devices("d", registeredIn: "shared")
        let object = try await servers[2].createObject(in: "shared")
        let property = try await servers[2].request("POST", "/v1/property", body: #"{"properties":[{"scene":"shared","values":[1]}]}"#)
        #expect(property.status == 200)
        #expect(try await servers[0].request("GET", "/v1/object/\(object)").status == 200)
        let read = try await servers[1].request("GET", "/v1/scene/shared")
        #expect(((read.json["scenes"] as? [[String: Any]])?.first?["devices"] as? [[String: Any]])?.count == devices.count)
        let store = try await PostgresStore(url: url)
        #expect(try await store.memberKeys(ofScene: "shared").objects == [object])
        await store.close()
        for server in servers { server.stop() }
        try await remove()
    }
}
