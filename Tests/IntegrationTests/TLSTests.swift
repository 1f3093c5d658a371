import AeselClient
import AeselLocalCluster
import AeselModel
import AeselTesting
import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// TLS with a throwaway certificate authority made at test time (TestCertificates): HTTPS listeners,
/// the cluster's own calls over HTTPS, PostgreSQL and etcd over TLS.
@Suite("TLS", .timeLimit(.minutes(3)))
struct TLSTests {
    @Test("aesel serve with a certificate answers HTTPS to clients that trust its authority, and neither plain HTTP nor other clients")
    func serveOverTLS() async throws {
        let certificates = try TestCertificates()
        let stranger = try TestCertificates(name: "Stranger")
        defer {
            certificates.remove()
            stranger.remove()
        }
        let server = try TestServer(arguments: certificates.serverArguments + ["--http-header-timeout", "1"])
        defer { server.stop() }
        #expect(server.url.hasPrefix("https://"))
        #expect(try await server.request("GET", "/health").status == 200)
        let object = try await server.createObject(in: "sealed-room")
        let read = try await server.request("GET", "/v1/object/\(object)")
        #expect(read.status == 200)

        // Plain HTTP on the same port gets no HTTP answer.
        let answer = try HostileInputTests.exchange(server, Array("GET /health HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
        #expect(answer != nil, "the server closes the connection")
        #expect(!String(decoding: answer ?? [], as: UTF8.self).hasPrefix("HTTP/"))
        // A client that trusts another authority, or the system's roots, refuses the certificate.
        for client in [try testHTTPClient(trusting: stranger.certificateAuthority), HTTPClient.shared] {
            await #expect(throws: (any Error).self) {
                // AsyncHTTPClient retries a failed handshake until the deadline.
                _ = try await client.execute(HTTPClientRequest(url: server.url + "/health"), timeout: .seconds(2))
            }
        }

        // The connection guard runs under TLS: a handshake that stops half-way is closed by the header timeout.
        #expect(try HostileInputTests.exchange(server, [0x16, 0x03, 0x01, 0x00]) == [])
        let metrics = try await server.metrics()
        #expect(metrics[#"aesel_http_timeouts_total{phase="header"}"#] == 1)
    }

    @Test("A bad TLS configuration stops the start with its key named")
    func badConfiguration() throws {
        let certificates = try TestCertificates()
        let other = try TestCertificates(name: "Other")
        defer {
            certificates.remove()
            other.remove()
        }
        let folder = NSTemporaryDirectory() + "aesel-tls-bad-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cases: [([String], String)] = [
            (["--tls-certificate", certificates.certificate], "tls.key"),
            (["--tls-certificate", certificates.certificate, "--tls-key", other.key], "tls.certificate"),
            (["--tls-certificate", folder + "/missing.pem", "--tls-key", certificates.key], "tls.certificate"),
            (["--tls-ca", folder + "/missing.pem"], "tls.ca"),
        ]
        for (arguments, key) in cases {
            let (status, output) = try ServerProcess.runToExit(
                executable: ServerProcess.aeselExecutable(), arguments: ["serve", "--http-port", "0", "--udp-port", "0", "--data", folder] + arguments)
            #expect(status != 0, "\(arguments)")
            #expect(output.contains(key), "\(arguments): \(output)")
        }
    }

    @Test("An all-TLS cluster: pairs announce to Adrestia over HTTPS, Adrestia probes and forwards over HTTPS, a device joins over HTTPS and receives events")
    func clusterOverTLS() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let cluster = try await TestCluster(discovery: .embedded, store: .sqlite, pairs: [("east-1", "east")], tls: certificates)
        try await cluster.whileRunning {
            try await Self.checkEvents(through: cluster, certificates: certificates, scene: "tls-harbour")
        }
    }

    @Test("etcd and PostgreSQL over TLS: Adrestia and a pair discover each other in etcds://, store in PostgreSQL with sslmode=verify-full, and serve a device")
    func etcdAndPostgresOverTLS() async throws {
        let certificates = try TestCertificates()
        let folder = NSTemporaryDirectory() + "aesel-tls-services-\(UUID().uuidString)"
        defer {
            certificates.remove()
            try? FileManager.default.removeItem(atPath: folder)
        }
        let etcd = try await EtcdProcess(folder: folder + "/etcd", tls: certificates.files)
        defer { etcd.stop() }
        let postgres = try await PostgresProcess(folder: folder + "/postgres", tls: certificates.files)
        defer { postgres.stop() }
        #expect(etcd.url.hasPrefix("etcds://"))
        // The server takes TCP over TLS only (a plain connection is refused: "no pg_hba.conf entry … no
        // encryption"), so a store that works is one that speaks TLS.
        let store = postgres.url + "?sslmode=verify-full&sslrootcert=" + certificates.certificateAuthority
        let cluster = try await TestCluster(discovery: .etcdAt(etcd.url), store: .url(store), pairs: [("east-1", "east")], tls: certificates)
        try await cluster.whileRunning {
            try await Self.checkEvents(through: cluster, certificates: certificates, scene: "tls-dock")
        }
    }

    /// The pair is healthy; a scene made through Adrestia gets two devices over HTTPS, and one's updates
    /// reach the other.
    static func checkEvents(through cluster: TestCluster, certificates: TestCertificates, scene: String) async throws {
        #expect(cluster.adrestia.url.hasPrefix("https://"))
        #expect(try await cluster.waitUntilHealthy(["east-1"]))
        let listed = try await cluster.pairStatus()["east-1"]
        #expect((listed?["clyman_http"] as? String)?.hasPrefix("https://") == true, "the pair announces its HTTPS URL: \(listed ?? [:])")
        try await cluster.createScene(scene, region: "east")
        let object = try await cluster.createObject(in: scene)
        var clients: [AeselClient] = []
        for name in ["sender", "receiver"] {
            clients.append(
                try await AeselClient.connect(
                    .init(gateways: [cluster.adrestia.url], sceneKey: scene, deviceKey: name, certificateAuthorityPath: certificates.certificateAuthority, credential: admin)))
        }
        let received = try await ClusterTests.stream(from: clients[0], to: [clients[1]], object: object, scene: scene, count: 20) { _ in }
        #expect(received == [Array(1...20)])
        for client in clients { await client.close() }
    }

    @Test("PostgreSQL: verify-full stores across a restart; require against a server without TLS, and an authority that did not sign, fail at once and say why")
    func postgresModes() async throws {
        let certificates = try TestCertificates()
        let stranger = try TestCertificates(name: "Stranger")
        let folder = NSTemporaryDirectory() + "aesel-tls-pg-\(UUID().uuidString)"
        defer {
            certificates.remove()
            stranger.remove()
            try? FileManager.default.removeItem(atPath: folder)
        }
        let secure = try await PostgresProcess(folder: folder + "/secure", tls: certificates.files)
        defer { secure.stop() }
        let plain = try await PostgresProcess(folder: folder + "/plain")
        defer { plain.stop() }

        // The authority from --tls-ca, as the URL names no sslrootcert.
        let server = try TestServer(arguments: ["--store", secure.url + "?sslmode=verify-full", "--tls-ca", certificates.certificateAuthority])
        defer { server.stop() }
        let object = try await server.createObject(in: "vault")
        try server.restart()
        #expect(try await server.request("GET", "/v1/object/\(object)").status == 200)

        let failures = [
            (plain.url + "?sslmode=require", "does not offer TLS"),
            (secure.url + "?sslmode=verify-ca&sslrootcert=" + stranger.certificateAuthority, "TLS to PostgreSQL"),
            (secure.url + "?sslmode=sometimes", "sslmode=sometimes"),
        ]
        // The reasons are the direct connection's: the pool would only say "cannot be reached" after 30 s.
        for (url, reason) in failures {
            let (status, output) = try ServerProcess.runToExit(
                executable: ServerProcess.aeselExecutable(),
                arguments: ["serve", "--http-port", "0", "--udp-port", "0", "--data", folder + "/data", "--store", url], timeout: .seconds(60))
            #expect(status != 0, "\(url)")
            #expect(output.contains(reason), "\(url): \(output)")
        }
    }
}
