import AeselLocalCluster
import AeselTesting
import AeselModel
import AeselWire
import Foundation
import NIOCore
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The HTTP API for objects, properties, scenes and registration, through a real server on each store.
@Suite("Transactions", .timeLimit(.minutes(3)))
struct TransactionTests {
    /// The first element of the reply's list, e.g. `first(reply, "objects")`.
    func first(_ reply: (status: Int, json: [String: Any]), _ list: String) -> [String: Any] {
        (reply.json[list] as? [[String: Any]])?.first ?? [:]
    }

    /// Every event a device has received so far, as JSON objects; while fewer than `expected` have come,
    /// it waits up to 3 s more (a UDP event may wait for its scene's members to load).
    func events(_ device: TestDevice, expected: Int = 0) -> [[String: Any]] {
        var events: [[String: Any]] = []
        var quietReads = 0
        while quietReads < (events.count < expected ? 10 : 1) {
            guard let datagram = device.receive() else {
                quietReads += 1
                continue
            }
            quietReads = 0
            if let json = try? JSONSerialization.jsonObject(with: Data(datagram)) as? [String: Any] { events.append(json) }
        }
        return events
    }

    @Test("Objects: create, get, partial update, assets, actions, keyframes, query, delete, with their events", arguments: StoreKind.durable)
    func objects(store: StoreKind) async throws {
        let server = try await TestServer.start(store: store)
        let watcher = try TestDevice("watcher")
        #expect(try await server.register(watcher, in: "s")["err_code"] as? Int == 100)

        let moved = [1.0, 0, 0, 4, 0, 1, 0, 5, 0, 0, 1, 6, 0, 0, 0, 1]
        let created = try await server.request("POST", "/v1/scene/s/object", body: #"{"objects":[{"name":"cube","type":"Mesh","subtype":"Cube","parent":"p1","asset_sub_id":"a1","assets":["x"],"transform":\#(moved)}]}"#)
        #expect(created.status == 200)
        let key = try #require(first(created, "objects")["key"] as? String)
        #expect(key.count == 24)

        let fetched = first(try await server.request("GET", "/v1/object/\(key)"), "objects")
        #expect(fetched["transform"] as? [Double] == moved)
        #expect(fetched["parent"] as? String == "p1")
        #expect(fetched["asset_sub_id"] as? String == "a1")

        // A partial update keeps what it does not name; the transform is not reset (the original's bug).
        let updated = first(try await server.request("POST", "/v1/scene/s/object/\(key)", body: #"{"objects":[{"name":"box","assets":["y"]}]}"#), "objects")
        #expect(updated["name"] as? String == "box")
        #expect(updated["type"] as? String == "Mesh")
        #expect(updated["transform"] as? [Double] == moved)
        #expect(updated["assets"] as? [String] == ["x", "y"])

        #expect(first(try await server.request("PUT", "/v1/object/\(key)/asset/z"), "objects")["assets"] as? [String] == ["x", "y", "z"])
        #expect(first(try await server.request("DELETE", "/v1/object/\(key)/asset/x"), "objects")["assets"] as? [String] == ["y", "z"])

        let action = #"{"name":"spin","description":"turns","keyframes":[{"frame":0,"transform":[1,0,0,0,0,1,0,0,0,0,1,0,0,0,0,1]}]}"#
        #expect(try await server.request("POST", "/v1/object/\(key)/action", body: action).status == 200)
        #expect(try await server.request("POST", "/v1/object/\(key)/action/spin", body: #"{"description":"faster"}"#).status == 200)
        #expect(try await server.request("POST", "/v1/object/\(key)/action/spin/keyframe", body: #"{"frame":10,"transform":[1,0,0,1]}"#).status == 200)
        #expect(try await server.request("POST", "/v1/object/\(key)/action/spin/keyframe/10", body: #"{"transform":[1,0,0,2]}"#).status == 200)
        #expect(try await server.request("DELETE", "/v1/object/\(key)/action/spin/keyframe/0").status == 200)
        let animated = first(try await server.request("GET", "/v1/object/\(key)"), "objects")
        let actions = try #require(animated["actions"] as? [[String: Any]])
        #expect(actions.first?["description"] as? String == "faster")
        let keyframes = try #require(actions.first?["keyframes"] as? [[String: Any]])
        #expect(keyframes.map { $0["frame"] as? Int } == [10])
        #expect((keyframes.first?["transform"] as? [Double])?[3] == 2)
        #expect((keyframes.first?["rotation_handle"] as? [Any])?.count == 4)
        #expect(try await server.request("DELETE", "/v1/object/\(key)/action/spin/keyframe/99").status == 404)
        #expect(try await server.request("DELETE", "/v1/object/\(key)/action/spin").status == 200)
        #expect(try await server.request("POST", "/v1/object/\(key)/action/spin", body: "{}").status == 404)

        // Under another scene's path the object is found by its key, as through the original's gateway.
        #expect(first(try await server.request("GET", "/v1/scene/other/object/\(key)"), "objects")["scene"] as? String == "s")
        #expect(try await server.request("DELETE", "/v1/scene/other/object/\(key)").status == 200)
        #expect(try await server.request("GET", "/v1/object/\(key)").status == 404)

        // Every mutation but the asset changes reached the scene's device, in order, with its code.
        #expect(events(watcher).map { $0["msg_type"] as? Int } == [0, 1, 19, 20, 15, 16, 18, 22, 3])
        await server.finish()
    }

    @Test("Object query: exact match on the listed fields, assets, and num_records without an off-by-one", arguments: StoreKind.durable)
    func objectQuery(store: StoreKind) async throws {
        let server = try await TestServer.start(store: store)
        _ = try await server.request("PUT", "/v1/scene/q", body: "{}")
        for index in 0..<5 {
            let type = index < 3 ? "Mesh" : "Curve"
            _ = try await server.request("POST", "/v1/object", body: #"{"objects":[{"scene":"q","name":"n\#(index)","type":"\#(type)","assets":["a\#(index % 2)","b"]}]}"#)
        }
        func count(_ body: String) async throws -> Int {
            let reply = try await server.request("POST", "/v1/object/query", body: body)
            #expect(reply.status == 200)
            return (reply.json["objects"] as? [Any])?.count ?? -1
        }
        #expect(try await count(#"{"objects":[{"type":"Mesh"}]}"#) == 3)
        #expect(try await count(#"{"num_records":2,"objects":[{"type":"Mesh"}]}"#) == 2)
        #expect(try await count(#"{"objects":[{"type":"Mesh","name":"n4"}]}"#) == 0)
        #expect(try await count(#"{"objects":[{"assets":["a1"]}]}"#) == 2)
        #expect(try await count(#"{"objects":[{"assets":["a0","b"]}]}"#) == 3)
        #expect(try await count(#"{"objects":[{"assets":["b","a0"]}]}"#) == 0)
        #expect(try await count(#"{"objects":[{"name":"n0"},{"name":"n1"}]}"#) == 2)
        #expect(try await server.request("POST", "/v1/scene/q/object/query", body: #"{"objects":[{"name":"n0"}]}"#).json["num_records"] as? Int == 1)
        #expect(try await server.request("POST", "/v1/scene/none/object/query", body: #"{"objects":[{"name":"n0"}]}"#).json["num_records"] as? Int == 0)
        await server.finish()
    }

    @Test("Locks: exactly one of 10 concurrent attempts wins, and only the owner may update", arguments: StoreKind.durable)
    func locks(store: StoreKind) async throws {
        let server = try await TestServer.start(store: store)
        let owner = try TestDevice("device-3")
        let other = try TestDevice("device-5")
        let watcher = try TestDevice("watcher")
        for device in [owner, other, watcher] { try await server.register(device, in: "l") }
        let key = try await server.createObject(in: "l")
        _ = events(watcher)

        let statuses = try await withThrowingTaskGroup(of: (String, Int).self) { group in
            for index in 0..<10 {
                group.addTask { ("device-\(index)", try await server.request("GET", "/v1/scene/l/object/\(key)/lock?device=device-\(index)").status) }
            }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        let winners = statuses.filter { $0.value == 200 }.map(\.key)
        #expect(winners.count == 1)
        #expect(statuses.values.filter { $0 == 409 }.count == 9)
        let lockedBy = try #require(winners.first)
        #expect(first(try await server.request("GET", "/v1/object/\(key)"), "objects")["owner"] as? String == lockedBy)

        // Make device-3 the owner for the rest of the test.
        if lockedBy != "device-3" {
            #expect(try await server.request("DELETE", "/v1/object/\(key)/lock?device=\(lockedBy)").status == 200)
            #expect(try await server.request("GET", "/v1/object/\(key)/lock?device=device-3").status == 200)
        }
        #expect(try await server.request("GET", "/v1/object/\(key)/lock?device=device-3").status == 409)
        #expect(try await server.request("GET", "/v1/object/\(key)/lock").status == 400)
        let refused = try await server.request("POST", "/v1/object/\(key)?device=device-5", body: #"{"objects":[{"name":"mine"}]}"#)
        #expect(refused.status == 409)
        #expect(refused.json["err_code"] as? Int == 123)
        #expect(try await server.request("POST", "/v1/object/\(key)?device=device-3", body: #"{"objects":[{"name":"ours"}]}"#).status == 200)

        // Over UDP too: the other device's event is dropped and counted, the owner's goes through.
        _ = events(watcher)
        other.send(#"{"msg_type":1,"key":"\#(key)","scene":"l","transform":[1,0,0,7]}"#, to: server.udpPort)
        owner.send(#"{"msg_type":1,"key":"\#(key)","scene":"l","transform":[1,0,0,9]}"#, to: server.udpPort)
        let received = events(watcher)
        #expect(received.count == 1)
        #expect((received.first?["transform"] as? [Double])?[3] == 9)
        #expect(try await server.metrics()[#"aesel_udp_dropped_total{reason="locked"}"#] == 1)

        // The lock survives a restart, on the UDP path too.
        try server.restart()
        try await Task.sleep(for: .milliseconds(100))
        other.send(#"{"msg_type":1,"key":"\#(key)","scene":"l","transform":[1,0,0,7]}"#, to: server.udpPort)
        owner.send(#"{"msg_type":1,"key":"\#(key)","scene":"l","transform":[1,0,0,11]}"#, to: server.udpPort)
        let afterRestart = events(watcher)
        #expect(afterRestart.count == 1)
        #expect((afterRestart.first?["transform"] as? [Double])?[3] == 11)

        #expect(try await server.request("DELETE", "/v1/object/\(key)/lock?device=device-5").status == 409)
        #expect(try await server.request("DELETE", "/v1/object/\(key)/lock?device=device-3").status == 200)
        other.send(#"{"msg_type":1,"key":"\#(key)","scene":"l","transform":[1,0,0,7]}"#, to: server.udpPort)
        #expect(events(watcher).count == 1)
        await server.finish()
    }

    @Test("Locks: an owner in a create or update takes the lock, refused while another device holds it; only an unlock releases it")
    func ownerInBodies() async throws {
        let server = try await TestServer.start(store: .sqlite)
        let owner = try TestDevice("owner")
        let other = try TestDevice("other")
        let watcher = try TestDevice("watcher")
        for device in [owner, other, watcher] { try await server.register(device, in: "o") }
        let created = try await server.request("POST", "/v1/object", body: #"{"objects":[{"scene":"o","name":"held","owner":"owner"}]}"#)
        let key = try #require(first(created, "objects")["key"] as? String)
        #expect(try await server.request("GET", "/v1/object/\(key)/lock?device=other").status == 409)
        _ = events(watcher)
        other.send(#"{"msg_type":1,"key":"\#(key)","scene":"o","transform":[1,0,0,7]}"#, to: server.udpPort)
        owner.send(#"{"msg_type":1,"key":"\#(key)","scene":"o","transform":[1,0,0,9]}"#, to: server.udpPort)
        #expect(events(watcher).compactMap { ($0["transform"] as? [Double])?[3] } == [9])

        let taken = try await server.request("POST", "/v1/object/\(key)", body: #"{"objects":[{"owner":"other"}]}"#)
        #expect(taken.status == 409)
        #expect(taken.json["err_code"] as? Int == 123)
        // The same owner again changes nothing; an empty owner does not unlock.
        #expect(try await server.request("POST", "/v1/object/\(key)", body: #"{"objects":[{"owner":"owner","name":"mine"}]}"#).status == 200)
        #expect(try await server.request("POST", "/v1/object/\(key)", body: #"{"objects":[{"owner":"","name":"still mine"}]}"#).status == 200)
        #expect(first(try await server.request("GET", "/v1/object/\(key)"), "objects")["owner"] as? String == "owner")

        #expect(try await server.request("DELETE", "/v1/object/\(key)/lock?device=owner").status == 200)
        // Unlocked, an update naming an owner locks it for that device, on the UDP path too.
        #expect(try await server.request("POST", "/v1/object/\(key)", body: #"{"objects":[{"owner":"other"}]}"#).status == 200)
        _ = events(watcher)
        owner.send(#"{"msg_type":1,"key":"\#(key)","scene":"o","transform":[1,0,0,5]}"#, to: server.udpPort)
        other.send(#"{"msg_type":1,"key":"\#(key)","scene":"o","transform":[1,0,0,6]}"#, to: server.udpPort)
        #expect(events(watcher).compactMap { ($0["transform"] as? [Double])?[3] } == [6])
        #expect(try await server.request("GET", "/v1/object/\(key)/lock?device=owner").status == 409)
        await server.finish()
    }

    @Test("The original's clients: objects and properties of a scene the store has not seen are stored, and take events once devices register there")
    func objectsBeforeTheirScene() async throws {
        let server = try await TestServer.start(store: .sqlite)
        // As the original's own test suites begin: objects first, in a scene nobody created.
        let created = try await server.request("POST", "/v1/object", body: #"{"objects":[{"name":"early","scene":"unseen","owner":""}]}"#)
        #expect(created.status == 200)
        let key = try #require(first(created, "objects")["key"] as? String)
        let property = try await server.request("POST", "/v1/property", body: #"{"properties":[{"name":"volume","scene":"unseen","values":[1]}]}"#)
        #expect(property.status == 200)
        let propertyKey = try #require(first(property, "properties")["key"] as? String)
        #expect(first(try await server.request("GET", "/v1/object/\(key)"), "objects")["scene"] as? String == "unseen")
        #expect(try await server.request("POST", "/v1/object/query", body: #"{"objects":[{"scene":"unseen"}]}"#).json["num_records"] as? Int == 1)
        // No scene is made for them; an update may move an object to another such scene and back.
        #expect(try await server.request("GET", "/v1/scene/unseen").status == 404)
        #expect(try await server.request("POST", "/v1/object/\(key)", body: #"{"objects":[{"scene":"elsewhere"}]}"#).status == 200)
        #expect(try await server.request("POST", "/v1/object/\(key)", body: #"{"objects":[{"scene":"unseen"}]}"#).status == 200)

        // Registration creates the scene, as in the original; its objects are its members at once.
        let devices = try await server.devices("sender", "receiver", registeredIn: "unseen")
        devices[1].drain()
        devices[0].send(#"{"msg_type":1,"key":"\#(key)","scene":"unseen","transform":[1,0,0,4]}"#, to: server.udpPort)
        #expect((events(devices[1]).first?["transform"] as? [Double])?[3] == 4)
        devices[0].send(#"{"msg_type":9,"key":"\#(propertyKey)","scene":"unseen","values":[2]}"#, to: server.udpPort)
        #expect(events(devices[1]).first?["key"] as? String == propertyKey)

        // Under another scene's path, both are found by key (the original's gateway dropped the scene).
        #expect(first(try await server.request("GET", "/v1/scene/other/object/\(key)"), "objects")["scene"] as? String == "unseen")
        #expect(try await server.request("POST", "/v1/scene/other/object/\(key)", body: #"{"objects":[{"name":"renamed"}]}"#).status == 200)
        #expect(first(try await server.request("GET", "/v1/object/\(key)"), "objects")["scene"] as? String == "unseen")
        #expect(try await server.request("GET", "/v1/scene/other/object/\(key)/lock?device=sender").status == 200)
        #expect(try await server.request("DELETE", "/v1/scene/other/object/\(key)/lock?device=sender").status == 200)
        #expect(first(try await server.request("GET", "/v1/scene/other/property/\(propertyKey)"), "properties")["scene"] as? String == "unseen")
        #expect(try await server.request("DELETE", "/v1/scene/other/property/\(propertyKey)").status == 200)
        #expect(try await server.request("DELETE", "/v1/scene/other/object/\(key)").status == 200)
        #expect(try await server.request("GET", "/v1/object/\(key)").status == 404)
        await server.finish()
    }

    @Test("Properties: values in both forms, update, query, keyframes, delete, UDP updates", arguments: StoreKind.durable)
    func properties(store: StoreKind) async throws {
        let server = try await TestServer.start(store: store)
        let watcher = try TestDevice("watcher")
        let sender = try TestDevice("sender")
        for device in [watcher, sender] { try await server.register(device, in: "p") }
        let created = try await server.request("POST", "/v1/scene/p/property", body: #"{"properties":[{"name":"volume","parent":"o1","values":[1,{"value":2.5}]}]}"#)
        #expect(created.json["msg_type"] as? Int == 8)
        let key = try #require(first(created, "properties")["key"] as? String)
        #expect(first(created, "properties")["values"] as? [Double] == [1, 2.5])
        #expect(try await server.request("POST", "/v1/property", body: #"{"properties":[{"scene":"p","values":[1,2,3,4,5]}]}"#).status == 400)

        let updated = try await server.request("POST", "/v1/property/\(key)", body: #"{"properties":[{"values":[3]}]}"#)
        #expect(first(updated, "properties")["values"] as? [Double] == [3])
        #expect(first(updated, "properties")["name"] as? String == "volume")
        #expect(try await server.request("POST", "/v1/property/query", body: #"{"properties":[{"parent":"o1"}]}"#).json["num_records"] as? Int == 1)
        #expect(try await server.request("POST", "/v1/property/\(key)/action", body: #"{"name":"fade","keyframes":[{"frame":2,"values":[{"value":1,"left_type":"free"}]}]}"#).status == 200)
        #expect(try await server.request("POST", "/v1/property/\(key)/action/fade/keyframe/2", body: #"{"values":[{"value":0.5}]}"#).status == 200)

        sender.send(#"{"msg_type":9,"key":"\#(key)","scene":"p","values":[7,8]}"#, to: server.udpPort)
        let codes = events(watcher, expected: 5).map { $0["msg_type"] as? Int }
        #expect(codes == [8, 9, 27, 24, 9])
        #expect(first(try await server.request("GET", "/v1/scene/p/property/\(key)"), "properties")["values"] as? [Double] == [7, 8])

        #expect(try await server.request("DELETE", "/v1/property/\(key)").json["msg_type"] as? Int == 11)
        #expect(try await server.request("GET", "/v1/property/\(key)").status == 404)
        await server.finish()
    }

    @Test("Scenes: duplicate keys, update, assets, query with paging and distance, delete deregisters", arguments: StoreKind.durable)
    func scenes(store: StoreKind) async throws {
        let server = try await TestServer.start(store: store)
        // Paris, London (344 km from Paris), Berlin (878 km), Tokyo.
        let cities: [(String, Double, Double, String)] = [("paris", 48.8566, 2.3522, "eu"), ("london", 51.5074, -0.1278, "eu"), ("berlin", 52.52, 13.405, "eu"), ("tokyo", 35.6762, 139.6503, "asia")]
        for (key, latitude, longitude, region) in cities {
            let body = #"{"scenes":[{"name":"city","region":"\#(region)","latitude":\#(latitude),"longitude":\#(longitude),"tags":["city","\#(key)"]}]}"#
            #expect(try await server.request("PUT", "/v1/scene/\(key)", body: body).status == 200)
        }
        #expect(try await server.request("PUT", "/v1/scene/paris", body: "{}").status == 409)
        let generated = first(try await server.request("POST", "/v1/scene", body: #"{"scenes":[{"name":"anon"}]}"#), "scenes")
        #expect((generated["key"] as? String)?.count == 36)

        func keys(_ body: String) async throws -> [String] {
            let reply = try await server.request("POST", "/v1/scene/query", body: body)
            return (reply.json["scenes"] as? [[String: Any]])?.compactMap { $0["key"] as? String } ?? []
        }
        #expect(try await keys(#"{"scenes":[{"region":"eu"}]}"#) == ["berlin", "london", "paris"])
        #expect(try await keys(#"{"start_record":1,"num_records":1,"scenes":[{"region":"eu"}]}"#) == ["london"])
        #expect(try await keys(#"{"scenes":[{"tags":["city","tokyo"]}]}"#) == ["tokyo"])
        #expect(try await keys(#"{"scenes":[{"latitude":48.8566,"longitude":2.3522,"distance":400}]}"#) == ["london", "paris"])
        #expect(try await keys(#"{"scenes":[{"latitude":48.8566,"longitude":2.3522,"distance":900}]}"#) == ["berlin", "london", "paris"])
        #expect(try await server.request("POST", "/v1/scene/query", body: #"{"scenes":[{"name":"nowhere"}]}"#).status == 404)

        let updated = first(try await server.request("POST", "/v1/scene/paris", body: #"{"scenes":[{"description":"capital","tags":["food"]}]}"#), "scenes")
        #expect(updated["description"] as? String == "capital")
        #expect(updated["tags"] as? [String] == ["city", "paris", "food"])
        let removed = first(try await server.request("POST", "/v1/scene/paris", body: #"{"operation":11,"scenes":[{"tags":["city"]}]}"#), "scenes")
        #expect(removed["tags"] as? [String] == ["paris", "food"])
        #expect(first(try await server.request("PUT", "/v1/scene/paris/asset/tower"), "scenes")["assets"] as? [String] == ["tower"])
        #expect(first(try await server.request("DELETE", "/v1/scene/paris/asset/tower"), "scenes")["assets"] as? [String] == [])
        #expect(try await server.request("POST", "/v1/scene/nowhere", body: "{}").status == 404)

        // Deleting a scene deregisters its devices: they receive nothing more.
        let devices = try await server.devices("a", "b", registeredIn: "paris")
        let object = try await server.createObject(in: "paris")
        for device in devices { device.drain() }
        devices[0].send(#"{"msg_type":1,"key":"\#(object)","scene":"paris"}"#, to: server.udpPort)
        #expect(devices[1].receive() != nil)
        #expect(try await server.request("DELETE", "/v1/scene/paris").status == 200)
        devices[0].send(#"{"msg_type":1,"key":"\#(object)","scene":"paris"}"#, to: server.udpPort)
        #expect(devices[1].receive() == nil)
        #expect(try await server.request("GET", "/v1/scene/paris").status == 404)
        #expect(try await server.request("DELETE", "/v1/scene/paris").status == 404)
        await server.finish()
    }

    @Test("Registration: align links scenes, and a device registered in one gets its pose in the other", arguments: StoreKind.durable)
    func coordinateSystems(store: StoreKind) async throws {
        let server = try await TestServer.start(store: store)
        func device(_ key: String, _ scene: String, path: String, transform: String) -> String {
            #"{"scenes":[{"key":"\#(scene)","devices":[{"key":"\#(key)","hostname":"127.0.0.1","port":4000,"transform":\#(transform)}]}]}"#
        }
        let zero = #"{"translation":[0,0,0],"rotation":[0,0,0]}"#
        // The phone is in scenes A and B. In A it stands at (1, 0, 0); in B at (0, 2, 0), turned 90° about Z.
        for scene in ["A", "B"] {
            #expect(try await server.request("POST", "/v1/register", body: device("phone", scene, path: "", transform: zero)).json["err_code"] as? Int == 100)
        }
        let alignA = try await server.request("POST", "/v1/scene/A/align", body: device("phone", "A", path: "", transform: #"{"translation":[1,0,0],"rotation":[0,0,0]}"#))
        #expect(alignA.json["err_code"] as? Int == 100)
        let alignB = try await server.request("POST", "/v1/align", body: device("phone", "B", path: "", transform: #"{"translation":[0,2,0],"rotation":[0,0,1.5707963267948966]}"#))
        #expect(alignB.json["err_code"] as? Int == 100)

        // A tablet at (3, 0, 0) in A registers in B: L_AB maps p to Rz(90°)(p - (1,0,0)) + (0,2,0),
        // so (3,0,0) goes to Rz(90°)(2,0,0) + (0,2,0) = (0,2,0) + (0,2,0) = (0,4,0), turned 90° about Z.
        #expect(try await server.request("POST", "/v1/scene/A/register", body: device("tablet", "A", path: "", transform: #"{"translation":[3,0,0],"rotation":[0,0,0]}"#)).json["err_code"] as? Int == 100)
        let reply = try await server.request("POST", "/v1/scene/B/register", body: device("tablet", "B", path: "", transform: zero))
        #expect(reply.json["num_records"] as? Int == 2)
        let scenes = try #require(reply.json["scenes"] as? [[String: Any]])
        #expect(scenes.last?["key"] as? String == "A")
        let transform = try #require(((scenes.first?["devices"] as? [[String: Any]])?.first?["transform"]) as? [String: Any])
        let translation = try #require(transform["translation"] as? [Double])
        let rotation = try #require(transform["rotation"] as? [Double])
        for (value, expected) in zip(translation + rotation, [0, 4, 0, 0, 0, Double.pi / 2]) {
            #expect(abs(value - expected) < 1e-9)
        }
        #expect(try await server.request("POST", "/v1/align", body: device("ghost", "B", path: "", transform: zero)).json["err_code"] as? Int == 102)
        await server.finish()
    }

    @Test("A server killed in the middle of writes loses no acknowledged transaction", arguments: StoreKind.durable)
    func killDuringWrites(store: StoreKind) async throws {
        let server = try await TestServer.start(store: store)
        _ = try await server.request("PUT", "/v1/scene/k", body: "{}")
        let written = WriteCounter()
        let acknowledged = try await withThrowingTaskGroup(of: [String].self) { group in
            for writer in 0..<4 {
                group.addTask {
                    var keys: [String] = []
                    for index in 0..<1000 {
                        guard let reply = try? await server.request("POST", "/v1/object", body: #"{"objects":[{"scene":"k","name":"w\#(writer)-\#(index)"}]}"#),
                            reply.status == 200, let key = (reply.json["objects"] as? [[String: Any]])?.first?["key"] as? String
                        else { break }
                        keys.append(key)
                        written.count.add(1, ordering: .relaxed)
                    }
                    return keys
                }
            }
            // Kill it once writes are well under way, whatever the machine's speed.
            _ = await eventually(timeout: .seconds(30)) { written.count.load(ordering: .relaxed) >= 40 }
            _ = server.process.stop(signal: SIGKILL)
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(!acknowledged.isEmpty)
        try server.restart()
        for key in acknowledged {
            #expect(try await server.request("GET", "/v1/object/\(key)").status == 200, "acknowledged object \(key) lost")
        }
        await server.finish()
    }
}

/// Acknowledged writes so far, shared by the writer tasks.
final class WriteCounter: Sendable {
    let count = Atomic<Int>(0)
}
