import AeselTesting
import Foundation
import Testing

/// Bad transactions get the original's envelope and `err_code`, never a crash or an empty body.
@Suite("HTTP errors", .timeLimit(.minutes(2)))
struct HTTPErrorTests {
    @Test("Errors keep the envelope and codes")
    func envelopes() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let created = try await server.request("PUT", "/v1/scene/s", body: #"{"scenes":[{"name":"Lobby"}]}"#)
        #expect(created.status == 200)
        #expect(created.json["err_code"] as? Int == 100)

        let cases: [(method: String, path: String, body: String?, status: Int, code: Int)] = [
            ("PUT", "/v1/scene/s", "{}", 409, 120),
            ("POST", "/v1/scene", "{not json", 400, 110),
            ("POST", "/v1/scene", #"{"scenes":[{"name":5}]}"#, 400, 110),
            ("POST", "/v1/scene", #"{"scenes":{"name":"x"}}"#, 400, 110),
            ("GET", "/v1/scene/missing", nil, 404, 102),
            ("GET", "/v1/scene/s/object/missing", nil, 404, 102),
            ("POST", "/v1/scene/s/object", #"{"objects":[]}"#, 400, 122),
            ("POST", "/v1/scene/s/object", #"{"objects":[{"transform":[1,2,"x"]}]}"#, 400, 110),
            ("POST", "/v1/object", #"{"objects":[{"name":"x"}]}"#, 400, 122),
            ("POST", "/v1/object", #"{"objects":[{"scene":"s","assets":"not a list"}]}"#, 400, 110),
            ("POST", "/v1/object/query", #"{"num_records":"ten"}"#, 400, 110),
            ("POST", "/v1/object/query", #"{"num_records":-1}"#, 400, 122),
            ("POST", "/v1/property", #"{"properties":[{"scene":"s","values":["x"]}]}"#, 400, 110),
            ("GET", "/v1/property/missing", nil, 404, 102),
            ("POST", "/v1/object/missing/action", #"{"name":"a"}"#, 404, 102),
            ("POST", "/v1/object/missing/action", #"{"description":"no name"}"#, 400, 110),
            ("DELETE", "/v1/object/missing/action/a/keyframe/notanumber", nil, 400, 110),
            ("POST", "/v1/scene/query", #"{"num_records":-5}"#, 400, 122),
            ("POST", "/v1/object/query", #"{"num_records":99999999999}"#, 400, 122),
            ("POST", "/v1/object", #"{"objects":[{"scene":"s","name":"a\u0000b"}]}"#, 400, 110),
            ("POST", "/v1/object", "{\"objects\":[{\"scene\":\"s\",\"name\":\"\(String(repeating: "n", count: 2000))\"}]}", 400, 110),
            ("PUT", "/v1/scene/\(String(repeating: "k", count: 300))", "{}", 400, 110),
            // Addresses the event socket could not send to are refused, so they cannot break the fan-out.
            ("POST", "/v1/scene/s/register", #"{"scenes":[{"devices":[{"key":"d","hostname":"255.255.255.255","port":5}]}]}"#, 200, 122),
            ("POST", "/v1/scene/s/register", #"{"scenes":[{"devices":[{"key":"d","hostname":"::1","port":5}]}]}"#, 200, 122),
            ("POST", "/v1/scene/s/register", #"{"scenes":[{"devices":[{"key":"d","hostname":"10.1.2.3","port":5}]}]}"#, 200, 122),
            ("GET", "/no/such/route", nil, 404, 102),
            ("DELETE", "/v1/scene", nil, 404, 102),
            // Registration answers 200 with the outcome in err_code, as the original.
            ("POST", "/v1/scene/s/register", #"{"scenes":[{}]}"#, 200, 122),
            ("POST", "/v1/scene/s/register", #"{"scenes":[{"devices":[{"key":"d","hostname":"phone.local","port":5}]}]}"#, 200, 122),
            ("POST", "/v1/scene/s/register", #"{"scenes":[{"devices":[{"key":"d","hostname":"127.0.0.1","port":70000}]}]}"#, 200, 122),
            ("POST", "/v1/scene/s/deregister", #"{"scenes":[{"devices":[{"key":"nobody"}]}]}"#, 200, 102),
        ]
        for item in cases {
            let reply = try await server.request(item.method, item.path, body: item.body)
            #expect(reply.status == item.status, "\(item.method) \(item.path)")
            #expect(reply.json["err_code"] as? Int == item.code, "\(item.method) \(item.path)")
            if item.code != 100 {
                #expect((reply.json["err_msg"] as? String)?.isEmpty == false, "\(item.method) \(item.path)")
            }
        }

        for path in ["/v1/scene", "/v1/object", "/v1/property/query", "/v1/register"] {
            let huge = try await server.request("POST", path, body: String(repeating: " ", count: 2 << 20))
            #expect(huge.status == 413, "\(path)")
            #expect(huge.json["err_code"] as? Int == 110, "\(path)")
        }
        #expect(try await server.request("GET", "/health").status == 200)
    }
}
