public import AeselModel

/// What the cluster manager and its discovery failed with.
public typealias ClusterError = AeselError<ClusterErrorCode>

public struct ClusterErrorCode: AeselErrorCode {
    public let description: String

    private init(_ description: String) {
        self.description = description
    }

    /// No healthy pair can take the scene (in its region, unless cross-region failover is on).
    public static let noHealthyPair = Self("no_healthy_pair")
    /// etcd refused a call or answered what discovery cannot use.
    public static let etcd = Self("etcd")
}
