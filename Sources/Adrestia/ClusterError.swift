public import AeselModel

/// What the cluster manager and its discovery failed with.
public typealias ClusterError = AeselError<ClusterErrorCode>

public enum ClusterErrorCode: String, AeselErrorCode {
    /// `noHealthyPair`: no healthy pair can take the scene (in its region, unless cross-region failover is
    /// on). `etcd`: etcd refused a call or answered what discovery cannot use. `notLeader`: a scene move
    /// was refused because this instance does not lead (any more).
    case noHealthyPair = "no_healthy_pair", etcd, notLeader = "not_leader"
}
