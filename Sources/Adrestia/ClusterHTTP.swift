import AeselAuth
import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One of the cluster's own small HTTP calls (announcements, etcd, probe registration, health checks,
/// the Cache API, a call to the leader): the status and the whole body, which is always read so the
/// connection goes back to the pool. Calls to Aesel processes carry the cluster secret; etcd's
/// (`toEtcd`) do not, as etcd has no use for it.
func clusterCall(
    _ method: HTTPMethod, _ url: String, json: Data? = nil, headers: [String: String] = [:], toEtcd: Bool = false, timeout: TimeAmount
) async throws -> (status: HTTPResponseStatus, body: ByteBuffer) {
    var request = HTTPClientRequest(url: url)
    request.method = method
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    if !toEtcd, let secret = ClusterCredentials.secret { request.headers.replaceOrAdd(name: ClusterSecret.headerName, value: secret.value) }
    if let json {
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: json))
    }
    let response = try await HTTPClient.cluster.execute(request, timeout: timeout)
    return (response.status, try await response.body.collect(upTo: 4 << 20))
}

extension HTTPClient {
    /// Adrestia's client for its calls to pairs, etcd and the other instances. A refused connection fails
    /// the call at once (AsyncHTTPClient would retry until the deadline): a dead pair or leader must be
    /// known as such now, and every caller has its own retry loop or fallback.
    /// Its `https://` calls trust ``ClusterTLS``'s authorities.
    static let cluster: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.tlsConfiguration = ClusterTLS.clientConfiguration
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }()
}

/// What the cluster's own `https://` calls trust: the process's `tls.ca` bundle, else the system's
/// roots. Set at start, before the first call; the client reads it once.
package enum ClusterTLS {
    private static let trusted = NIOLockedValueBox<TLSConfiguration?>(nil)

    /// - Parameter configuration: from `TLSSettings.clientConfiguration()`.
    package static func trust(_ configuration: TLSConfiguration) {
        trusted.withLockedValue { $0 = configuration }
    }

    static var clientConfiguration: TLSConfiguration? { trusted.withLockedValue { $0 } }
}

/// The cluster secret this process's calls to the cluster carry. Set at start, before the first call.
package enum ClusterCredentials {
    private static let current = NIOLockedValueBox<ClusterSecret?>(nil)

    package static func use(_ secret: ClusterSecret?) {
        current.withLockedValue { $0 = secret }
    }

    static var secret: ClusterSecret? { current.withLockedValue { $0 } }
}

/// A key as one URL path segment.
func pathSegment(_ key: String) -> String {
    key.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? key
}

extension HTTPField.Name {
    /// Marks a call one Adrestia instance forwards to the leader, which answers it from its own view.
    static let aeselForwardedBy = Self("Aesel-Forwarded-By")!
}
