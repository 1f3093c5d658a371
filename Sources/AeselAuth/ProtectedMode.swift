import AeselModel
public import Logging

/// Safe by default, easy on a laptop, as Redis's protected mode is: `aesel serve` bound to a loopback
/// address may run open (no credentials, plaintext events) and says so; bound to any other address, and
/// every cluster process always, a process refuses to start with what it lacks named, unless
/// ``AccessControl/insecure`` is set, which it logs as a warning.
public enum ProtectedMode {
    /// What a process is, as far as protected mode cares.
    public struct Process: Sendable {
        /// The command, for messages: `serve`, `pair`, `clyman`, `crazyivan` or `adrestia`.
        public var command: String
        public var host: String
        /// Whether the cluster calls it or it calls the cluster (a pair, Adrestia), so it needs the
        /// cluster secret.
        public var inCluster: Bool
        /// Whether its events are sealed; nil for a process without events (Adrestia).
        public var eventsSealed: Bool?
        /// `aesel serve`, which alone may run open, on a loopback address.
        public var mayRunOpenOnLoopback: Bool

        public init(command: String, host: String, inCluster: Bool, eventsSealed: Bool?, mayRunOpenOnLoopback: Bool) {
            self.command = command
            self.host = host
            self.inCluster = inCluster
            self.eventsSealed = eventsSealed
            self.mayRunOpenOnLoopback = mayRunOpenOnLoopback
        }
    }

    /// How the process runs.
    public enum Outcome: Equatable, Sendable {
        /// Everything protected mode asks for is configured.
        case protected
        /// `aesel serve` on loopback without credentials: open to whoever runs on this machine.
        case openOnLoopback
        /// Started with `insecure` though these are missing.
        case insecure(missing: [String])
    }

    /// What `process` lacks to run protected, for people: empty when nothing.
    public static func missing(_ process: Process, access: AccessControl) -> [String] {
        var missing: [String] = []
        if !access.requiresCredentials {
            missing.append("credentials: a token secret or API keys (--token-secret-file, --api-keys-file)")
        }
        if process.inCluster, access.clusterSecret == nil {
            missing.append("a cluster secret (--cluster-secret-file)")
        }
        if process.eventsSealed == false {
            missing.append("sealed events (events are not sealed: --event-security sealed)")
        }
        return missing
    }

    /// Decides how `process` may run, and logs it: a notice when open on loopback, a warning when
    /// insecure.
    /// - Throws: `ConfigurationError` naming what is missing, when the process may not start.
    @discardableResult
    public static func check(_ process: Process, access: AccessControl, logger: Logger) throws -> Outcome {
        if process.mayRunOpenOnLoopback, isLoopback(process.host) {
            // Only this machine reaches it: whatever is configured is asked for, nothing more.
            guard !access.requiresCredentials else { return .protected }
            logger.notice(
                "protected mode: aesel serve on the loopback address \(process.host) runs open: no credentials are asked (give --token-secret-file or --api-keys-file to ask for them); bound to any other address it would refuse to start")
            return .openOnLoopback
        }
        let missing = missing(process, access: access)
        guard !missing.isEmpty else { return .protected }
        guard access.insecure else {
            let place = process.mayRunOpenOnLoopback ? "aesel serve on \(process.host), not a loopback address," : "aesel \(process.command)"
            throw ConfigurationError(
                key: "", reason: "protected mode: \(place) does not start without \(missing.joined(separator: "; ")). Configure them, or give --insecure to run without them")
        }
        logger.warning(
            "INSECURE: aesel \(process.command) on \(process.host) runs without \(missing.joined(separator: "; ")) because --insecure was given: do not run it where others reach it")
        return .insecure(missing: missing)
    }
}
