public import AeselModel

/// Why a child process, or the local cluster, could not start.
public typealias LocalClusterError = AeselError<LocalClusterErrorCode>

public enum LocalClusterErrorCode: String, AeselErrorCode {
    /// `missingProgram`: a program the cluster runs (etcd, PostgreSQL's) is not installed. `startFailed`: a
    /// child exited, or was not ready in time.
    case missingProgram = "missing_program", startFailed = "start_failed"
}
