public import AeselModel

/// Durable storage for scenes, registrations and objects. SQLite is the embedded back end; PostgreSQL
/// implements the same protocol for shared deployments.
///
/// Every mutating call is one transaction, committed before it returns: an acknowledged transaction is
/// never lost.
public protocol AeselStore: Sendable {
    /// Creates `scene`; throws ``StoreError/duplicateKey(_:)`` when its key exists.
    func createScene(_ scene: Scene) async throws
    func scene(key: String) async throws -> Scene?

    /// Adds `device` to the scene, or replaces the registration of the same device key.
    func register(_ device: Device, inScene sceneKey: String) async throws
    /// Returns whether the device was registered there.
    func deregister(deviceKey: String, fromScene sceneKey: String) async throws -> Bool
    func devices(inScene sceneKey: String) async throws -> [Device]

    /// Creates `object`; throws ``StoreError/duplicateKey(_:)`` when its key exists.
    func createObject(_ object: SceneObject) async throws
    func object(key: String) async throws -> SceneObject?
    /// Applies event transforms in one transaction. An update whose sequence is older than the stored one
    /// is skipped, so a stale event never overwrites a newer transform. Returns how many objects changed.
    @discardableResult
    func applyTransforms(_ updates: [TransformUpdate]) async throws -> Int

    func close() async throws
}

/// The newest transform of one object, as the write-behind persister hands it to the store.
public struct TransformUpdate: Sendable, Hashable {
    public var objectKey: String
    public var transform: Transform
    /// 0 when the events were not numbered; such an update always applies.
    public var sequence: UInt64

    public init(objectKey: String, transform: Transform, sequence: UInt64) {
        self.objectKey = objectKey
        self.transform = transform
        self.sequence = sequence
    }
}

public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case duplicateKey(String)

    public var description: String {
        switch self {
        case .duplicateKey(let key): "the key \(key) already exists"
        }
    }
}
