public import NIOCore
import NIOConcurrencyHelpers

/// Finds which registered device sent a datagram: CrazyIvan's Scene-Device cache answers in one process.
public protocol SenderDirectory: Sendable {
    /// The device registered in the scene at `address`; nil when there is none, or when the scene is not
    /// loaded yet, in which case the directory starts loading it.
    func deviceKey(in sceneKey: String, at address: SocketAddress) -> String?
}

/// The locked objects and their owners, mirrored from the store so the UDP path can refuse a locked
/// object's events from other devices without a query. The HTTP lock routes keep it current.
public final class ObjectLocks: Sendable {
    private let owners = NIOLockedValueBox<[String: String]>([:])

    public init(_ owners: [String: String] = [:]) {
        self.owners.withLockedValue { $0 = owners }
    }

    public func owner(of objectKey: String) -> String? {
        owners.withLockedValue { $0.isEmpty ? nil : $0[objectKey] }
    }

    public func set(owner: String, of objectKey: String) {
        owners.withLockedValue { owners in
            if owner.isEmpty { owners[objectKey] = nil } else { owners[objectKey] = owner }
        }
    }
}
