import Adrestia
import HTTPTypes
import NIOCore
import Testing

/// Which pair and which half Adrestia forwards each `/v1` call to, without a pair or a socket.
@Suite("Gateway forwarding rules")
struct ForwardingTargetTests {
    func target(_ method: HTTPRequest.Method, _ path: String, body: String = "") throws -> ForwardingTarget {
        try ForwardingTarget(method: method, path: path, body: ByteBuffer(string: body))
    }

    @Test(
        "A scene's own routes go to its pair; objects and properties to CLyman, the rest to CrazyIvan",
        arguments: [
            (HTTPRequest.Method.get, "/v1/scene/lobby/object/o1", ForwardingTarget(sceneKey: "lobby", half: .clyman, record: .object("o1"))),
            (.post, "/v1/scene/lobby/object", ForwardingTarget(sceneKey: "lobby", half: .clyman)),
            (.post, "/v1/scene/lobby/object/query", ForwardingTarget(sceneKey: "lobby", half: .clyman)),
            (.put, "/v1/scene/lobby/property/p1", ForwardingTarget(sceneKey: "lobby", half: .clyman, record: .property("p1"))),
            (.get, "/v1/scene/lobby", ForwardingTarget(sceneKey: "lobby", half: .crazyIvan)),
            (.delete, "/v1/scene/lobby", ForwardingTarget(sceneKey: "lobby", half: .crazyIvan)),
            (.get, "/v1/scene/with%20space/object/o", ForwardingTarget(sceneKey: "with space", half: .clyman, record: .object("o"))),
            (.post, "/v1/scene/query", ForwardingTarget(sceneKey: nil, half: .crazyIvan)),
            (.post, "/v1/scene/cache", ForwardingTarget(sceneKey: nil, half: .crazyIvan)),
            (.post, "/v1/object", ForwardingTarget(sceneKey: nil, half: .clyman)),
            (.post, "/v1/object/query", ForwardingTarget(sceneKey: nil, half: .clyman)),
            (.get, "/v1/object/o%201/lock", ForwardingTarget(sceneKey: nil, half: .clyman, record: .object("o 1"))),
            (.get, "/v1/property/p1", ForwardingTarget(sceneKey: nil, half: .clyman, record: .property("p1"))),
            (.get, "/v1/register", ForwardingTarget(sceneKey: nil, half: .crazyIvan)),
        ])
    func routes(method: HTTPRequest.Method, path: String, expected: ForwardingTarget) throws {
        #expect(try target(method, path) == expected)
    }

    @Test("Deregistration and alignment name their scene in the body")
    func sceneInBody() throws {
        #expect(try target(.post, "/v1/deregister", body: #"{"scenes":[{"key":"lobby","devices":[{"key":"d"}]}]}"#).sceneKey == "lobby")
        #expect(try target(.post, "/v1/align", body: #"{"scenes":[{"key":"a"},{"key":"b"}]}"#).sceneKey == "a")
        #expect(try target(.post, "/v1/deregister", body: "not json").sceneKey == nil, "any healthy pair answers the error")
        #expect(try target(.post, "/v1/object", body: #"{"objects":[{"scene":"lobby"}]}"#).sceneKey == "lobby")
        #expect(try target(.post, "/v1/property", body: #"{"properties":[{"scene":"hall"}]}"#).sceneKey == "hall")
    }

    @Test("Methods the pairs do not serve are refused here, and so are Adrestia's probe scenes")
    func refused() {
        for method in [HTTPRequest.Method.patch, .options, .trace, .head] {
            #expect(throws: (any Error).self) { try target(method, "/v1/scene/lobby") }
        }
        #expect(throws: (any Error).self) { try target(.delete, "/v1/scene/aesel-probe-east-1") }
        #expect(throws: (any Error).self) { try target(.post, "/v1/deregister", body: #"{"scenes":[{"key":"aesel-probe-x"}]}"#) }
    }
}
