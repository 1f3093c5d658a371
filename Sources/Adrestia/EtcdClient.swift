import AeselModel
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// The few etcd v3 calls discovery and the leader election need, through etcd's JSON gateway (`/v3/...`;
/// keys and values are base64, int64 fields are JSON strings).
package struct EtcdClient: Sendable {
    static func pairPrefix(cluster: String) -> String { "/\(cluster)/pairs/" }
    static func leaderKey(cluster: String) -> String { "/\(cluster)/leader" }

    /// A key's value and the store revision that last changed it.
    package struct Entry: Sendable {
        var value: Data
        var modRevision: Int64
    }

    /// A compare-and-set's outcome: the store's revision after it, and when it failed, the key as it is.
    struct Swap: Sendable {
        var succeeded: Bool
        var revision: Int64
        var current: Entry?
    }

    let endpoint: String

    /// - Parameter endpoint: etcd's client URL, `http://HOST:PORT`.
    package init(endpoint: String) {
        self.endpoint = endpoint
    }

    func grantLease(ttl: Int) async throws -> String {
        let answer = try await call("/v3/lease/grant", ["TTL": "\(ttl)"])
        guard let id = answer["ID"] as? String else { throw ClusterError(.etcd, "etcd granted no lease: \(answer)") }
        return id
    }

    /// False when the lease is gone (expired or revoked).
    func keepAlive(lease: String) async throws -> Bool {
        let answer = try await call("/v3/lease/keepalive", ["ID": lease])
        let ttl = ((answer["result"] as? [String: Any])?["TTL"] as? String).flatMap(Int.init) ?? 0
        return ttl > 0
    }

    func revoke(lease: String) async throws {
        _ = try await call("/v3/lease/revoke", ["ID": lease])
    }

    func put(key: String, value: Data, lease: String) async throws {
        _ = try await call("/v3/kv/put", ["key": Self.base64(key), "value": value.base64EncodedString(), "lease": lease])
    }

    package func get(key: String, timeout: TimeAmount = Self.callTimeout) async throws -> Entry? {
        let answer = try await call("/v3/kv/range", ["key": Self.base64(key)], timeout: timeout)
        return (answer["kvs"] as? [[String: Any]])?.first.flatMap(Self.entry)
    }

    func range(prefix: String) async throws -> [(key: String, value: Data)] {
        var end = Array(prefix.utf8)
        end[end.count - 1] += 1
        let answer = try await call("/v3/kv/range", ["key": Self.base64(prefix), "range_end": Data(end).base64EncodedString()])
        let kvs = answer["kvs"] as? [[String: Any]] ?? []
        return kvs.compactMap { kv in
            guard let key = (kv["key"] as? String).flatMap({ Data(base64Encoded: $0) }), let entry = Self.entry(kv) else { return nil }
            return (String(decoding: key, as: UTF8.self), entry.value)
        }
    }

    /// Puts `value` under `key` if the key was last changed at `modRevision` (0: if it does not exist).
    func put(key: String, value: Data, ifModRevision modRevision: Int64, timeout: TimeAmount = Self.callTimeout) async throws -> Swap {
        try await swap(key: key, ifModRevision: modRevision, then: ["request_put": ["key": Self.base64(key), "value": value.base64EncodedString()]], timeout: timeout)
    }

    /// Deletes `key` if it was last changed at `modRevision`.
    func delete(key: String, ifModRevision modRevision: Int64, timeout: TimeAmount = Self.callTimeout) async throws -> Swap {
        try await swap(key: key, ifModRevision: modRevision, then: ["request_delete_range": ["key": Self.base64(key)]], timeout: timeout)
    }

    /// One transaction: compare the key's mod revision, run `then` if equal, else read the key.
    private func swap(key: String, ifModRevision modRevision: Int64, then operation: [String: Any], timeout: TimeAmount) async throws -> Swap {
        let body: [String: Any] = [
            "compare": [["key": Self.base64(key), "target": "MOD", "result": "EQUAL", "mod_revision": "\(modRevision)"]],
            "success": [operation],
            "failure": [["request_range": ["key": Self.base64(key)]]],
        ]
        let answer = try await call("/v3/kv/txn", body, timeout: timeout)
        guard let revision = ((answer["header"] as? [String: Any])?["revision"] as? String).flatMap(Int64.init) else {
            throw ClusterError(.etcd, "etcd's transaction answer has no revision: \(answer)")
        }
        // A false `succeeded` is left out of the JSON, as every zero value is.
        let succeeded = answer["succeeded"] as? Bool ?? false
        let range = ((answer["responses"] as? [[String: Any]])?.first?["response_range"] as? [String: Any])
        let current = (range?["kvs"] as? [[String: Any]])?.first.flatMap(Self.entry)
        return Swap(succeeded: succeeded, revision: revision, current: current)
    }

    /// Well inside the pairs' 2 s announcement TTL, so that a stalled renewal is retried before it runs out.
    static let callTimeout: TimeAmount = .milliseconds(500)

    private static func base64(_ key: String) -> String { Data(key.utf8).base64EncodedString() }

    private static func entry(_ kv: [String: Any]) -> Entry? {
        guard let value = (kv["value"] as? String ?? "").nonEmptyBase64, let modRevision = (kv["mod_revision"] as? String).flatMap(Int64.init) else { return nil }
        return Entry(value: value, modRevision: modRevision)
    }

    private func call(_ path: String, _ body: [String: Any], timeout: TimeAmount = Self.callTimeout) async throws -> [String: Any] {
        let (status, bytes) = try await clusterCall(.POST, endpoint + path, json: try JSONSerialization.data(withJSONObject: body), toEtcd: true, timeout: timeout)
        guard status == .ok else {
            throw ClusterError(.etcd, "etcd \(path): \(status.code) \(String(buffer: bytes))")
        }
        return (try JSONSerialization.jsonObject(with: Data(buffer: bytes))) as? [String: Any] ?? [:]
    }
}

extension String {
    /// The bytes of a base64 field; an empty value is left out of etcd's JSON, so it decodes as empty.
    fileprivate var nonEmptyBase64: Data? { isEmpty ? Data() : Data(base64Encoded: self) }
}
