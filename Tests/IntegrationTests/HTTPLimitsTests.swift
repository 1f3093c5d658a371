import AeselLocalCluster
import AeselTesting
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The HTTP listener's connection limit and the counting of every HTTP limit in /metrics.
@Suite("HTTP limits", .timeLimit(.minutes(2)))
struct HTTPLimitsTests {
    /// Sends `request` on the connection `fd` and reads one answer: its head, and a body of its
    /// Content-Length. Nil if the connection closes first.
    static func ask(_ fd: Int32, _ request: String) -> String? {
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array(request.utf8)
        guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else { return nil }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let text = String(decoding: answer, as: UTF8.self)
            if let headEnd = text.range(of: "\r\n\r\n") {
                let head = text[..<headEnd.lowerBound].lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }.flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                if text.utf8.count - text.utf8.distance(from: text.startIndex, to: headEnd.upperBound) >= length { return text }
            }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return nil }
            answer += buffer[0..<count]
        }
    }

    /// A Prometheus sample from a /metrics answer, e.g. `aesel_http_connections_open`.
    static func sample(_ name: String, in answer: String) -> Double? {
        answer.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    @Test("The connection past --http-max-connections is closed unanswered and counted; the open ones go on; every 413 is counted")
    func connectionLimit() async throws {
        let server = try TestServer(arguments: ["--http-max-connections", "2"])
        defer { server.stop() }
        let held = [HostileInputTests.connectHTTP(server), HostileInputTests.connectHTTP(server)]
        defer { for fd in held { close(fd) } }
        for fd in held {
            #expect(Self.ask(fd, "GET /health HTTP/1.1\r\nHost: a\r\n\r\n")?.hasPrefix("HTTP/1.1 200") == true)
        }
        #expect(try HostileInputTests.exchange(server, Array("GET /health HTTP/1.1\r\nHost: a\r\n\r\n".utf8)) == [], "the third is closed unanswered")

        // A body larger than the limit, by its Content-Length and by its bytes.
        let declared = Self.ask(held[1], "PUT /v1/scene/big HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n")
        #expect(declared?.hasPrefix("HTTP/1.1 413") == true)
        let chunk = String(repeating: "x", count: 2 << 20)
        let sent = Self.ask(held[0], "PUT /v1/scene/big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\(String(chunk.utf8.count, radix: 16))\r\n\(chunk)\r\n0\r\n\r\n")
        #expect(sent?.hasPrefix("HTTP/1.1 413") == true)

        // Asked on a connection already open, since no third may open.
        let metrics = try #require(Self.ask(held[0], "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(Self.sample(#"aesel_http_limited_total{limit="connections"}"#, in: metrics) == 1)
        #expect(Self.sample(#"aesel_http_limited_total{limit="body"}"#, in: metrics) == 2)
        #expect(Self.sample("aesel_http_connections_open", in: metrics) == 2)
    }

    @Test("--http-max-connections is 1 to 1000000")
    func limitRange() throws {
        let folder = NSTemporaryDirectory() + "aesel-limits-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for value in ["0", "1000001"] {
            let (status, output) = try ServerProcess.runToExit(
                executable: ServerProcess.aeselExecutable(), arguments: ["serve", "--http-port", "0", "--udp-port", "0", "--data", folder, "--http-max-connections", value])
            #expect(status != 0)
            #expect(output.contains("http.max.connections"), "\(output)")
        }
    }
}
