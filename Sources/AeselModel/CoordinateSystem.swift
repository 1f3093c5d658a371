#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// The coordinate-system algorithm of reference 3.6, done as rigid-body algebra (docs/coordinates.md).
// The original added translations and multiplied Euler-derived rotations in the wrong order; here every pose and
// link is one rigid transform, so poses compose and invert exactly.

/// A 3x3 matrix stored as three rows, for the rotation part of a ``RigidTransform``.
///
/// Rows keep `matrix * vector` a dot product per row; plain `SIMD3` keeps the model free of `simd`, which Linux
/// does not have.
public struct Matrix3x3: Sendable, Hashable {
    /// The top row, elements (0, 0) to (0, 2).
    public var row0: SIMD3<Double>
    /// The middle row, elements (1, 0) to (1, 2).
    public var row1: SIMD3<Double>
    /// The bottom row, elements (2, 0) to (2, 2).
    public var row2: SIMD3<Double>

    /// No rotation: the Euler angles (0, 0, 0).
    public static let identity = Matrix3x3(SIMD3(1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, 0, 1))

    /// Builds a matrix from its rows, top to bottom.
    public init(_ row0: SIMD3<Double>, _ row1: SIMD3<Double>, _ row2: SIMD3<Double>) {
        self.row0 = row0
        self.row1 = row1
        self.row2 = row2
    }

    /// The rotation of a device transform's Euler angles: `Rx(x) · Ry(y) · Rz(z)`, radians.
    ///
    /// This is the original's convention (glm `eulerAngleXYZ`, reference 3.3): intrinsic X, then Y, then Z, so a
    /// column vector is rotated about Z first.
    public init(eulerXYZ angles: SIMD3<Double>) {
        let (sx, cx) = (sin(angles.x), cos(angles.x))
        let (sy, cy) = (sin(angles.y), cos(angles.y))
        let (sz, cz) = (sin(angles.z), cos(angles.z))
        self.init(
            SIMD3(cy * cz, -cy * sz, sy),
            SIMD3(cx * sz + sx * sy * cz, cx * cz - sx * sy * sz, -sx * cy),
            SIMD3(sx * sz - cx * sy * cz, sx * cz + cx * sy * sz, cx * cy)
        )
    }

    /// The element at `row`, `column` (both 0 to 2), in the usual mathematical indexing.
    public subscript(row row: Int, column column: Int) -> Double {
        switch row {
        case 0: row0[column]
        case 1: row1[column]
        case 2: row2[column]
        default: preconditionFailure("a 3x3 matrix has rows 0 to 2, not \(row)")
        }
    }

    /// The transpose, which is the inverse of a rotation: cheaper and exact, unlike a general inverse.
    public var transposed: Matrix3x3 {
        Matrix3x3(
            SIMD3(row0.x, row1.x, row2.x),
            SIMD3(row0.y, row1.y, row2.y),
            SIMD3(row0.z, row1.z, row2.z)
        )
    }

    /// The intrinsic XYZ Euler angles (radians) of a rotation matrix, the inverse of ``init(eulerXYZ:)``.
    ///
    /// `y` is in [-π/2, π/2], `x` and `z` in [-π, π]. At gimbal lock (`y` = ±π/2) X and Z turn about the same
    /// axis, so only their sum (`y` = π/2) or difference (`y` = -π/2) is defined; `x` is then 0 and `z` takes the
    /// whole turn, so the angles still rebuild the same matrix.
    public var eulerXYZ: SIMD3<Double> {
        // cos(y) ≥ 0 is the length of (m12, m22) = cos(y) · (-sin x, cos x).
        let cosY = (row1.z * row1.z + row2.z * row2.z).squareRoot()
        let x = cosY < Self.gimbalLockTolerance ? 0 : atan2(-row1.z, row2.z)
        // Undoing Rx(x) leaves Ry(y) · Rz(z), whose middle row is (sin z, cos z, 0): well conditioned even near
        // gimbal lock, where x itself is not.
        let (sx, cx) = (sin(x), cos(x))
        let z = atan2(cx * row1.x + sx * row2.x, cx * row1.y + sx * row2.y)
        let y = atan2(row0.z, cosY)
        // Adding zero turns atan2's -0.0 into 0.0, which keeps "-0.0" out of the JSON.
        return SIMD3(x + 0, y + 0, z + 0)
    }

    /// Below this cos(y) the X angle is too poorly defined to recover, and is set to 0 (gimbal lock).
    static let gimbalLockTolerance = 1e-12

    /// The matrix product: `rhs` acts first on a column vector, then `lhs`.
    public static func * (lhs: Matrix3x3, rhs: Matrix3x3) -> Matrix3x3 {
        let columns = rhs.transposed
        func row(_ r: SIMD3<Double>) -> SIMD3<Double> {
            SIMD3((r * columns.row0).sum(), (r * columns.row1).sum(), (r * columns.row2).sum())
        }
        return Matrix3x3(row(lhs.row0), row(lhs.row1), row(lhs.row2))
    }

    /// The matrix applied to a column vector: a rotation turns a point about the origin.
    public static func * (lhs: Matrix3x3, rhs: SIMD3<Double>) -> SIMD3<Double> {
        SIMD3((lhs.row0 * rhs).sum(), (lhs.row1 * rhs).sum(), (lhs.row2 * rhs).sum())
    }
}

/// A rotation followed by a translation: `p ↦ rotation · p + translation`.
///
/// Device poses and scene links are both of this kind. Working on matrices rather than on Euler angles is what
/// makes chains of links compose and invert correctly; Euler angles are only the storage and wire form.
public struct RigidTransform: Sendable, Hashable {
    /// An orthonormal matrix with determinant 1.
    public var rotation: Matrix3x3
    /// Where the origin lands: for a device pose, the device's position in the scene.
    public var translation: SIMD3<Double>

    /// Leaves every point where it is; the transform between a scene and itself.
    public static let identity = RigidTransform(rotation: .identity, translation: .zero)

    /// Builds a transform from its parts; `rotation` must be a rotation matrix for ``inverse`` to be right.
    public init(rotation: Matrix3x3, translation: SIMD3<Double>) {
        self.rotation = rotation
        self.translation = translation
    }

    /// The transform of a device pose or a link: its Euler angles become a matrix (``Matrix3x3/init(eulerXYZ:)``).
    public init(_ transform: DeviceTransform) {
        self.init(rotation: Matrix3x3(eulerXYZ: transform.rotation), translation: transform.translation)
    }

    /// The storage and wire form: translation plus intrinsic XYZ Euler angles (``Matrix3x3/eulerXYZ``).
    public var deviceTransform: DeviceTransform {
        DeviceTransform(translation: translation, rotation: rotation.eulerXYZ)
    }

    /// The transform that undoes this one: `p ↦ Rᵀ · (p − t)`, used to traverse a link backwards.
    public var inverse: RigidTransform {
        let inverseRotation = rotation.transposed
        return RigidTransform(rotation: inverseRotation, translation: -(inverseRotation * translation))
    }

    /// Maps a point: rotate, then translate.
    public func apply(to point: SIMD3<Double>) -> SIMD3<Double> {
        rotation * point + translation
    }

    /// Composition in matrix order: `(lhs * rhs).apply(to: p) == lhs.apply(to: rhs.apply(to: p))`.
    ///
    /// The formulas read like the docs: `L_AB = T_B * T_A.inverse`, `T_B = L_AB * T_A`.
    public static func * (lhs: RigidTransform, rhs: RigidTransform) -> RigidTransform {
        RigidTransform(
            rotation: lhs.rotation * rhs.rotation,
            translation: lhs.rotation * rhs.translation + lhs.translation
        )
    }

    /// Composition in reading order: this transform first, then `next` (`next * self`), for walking a chain.
    public func then(_ next: RigidTransform) -> RigidTransform {
        next * self
    }
}

extension SceneLink {
    /// The link a device creates when it aligns in one scene while registered in another: `L_AB = T_B · T_A⁻¹`.
    ///
    /// Both poses are the same device's, so the link maps scene A coordinates onto scene B's. The original built
    /// it from added translations and reversed rotations (reference 3.6); see docs/coordinates.md.
    /// - Parameters:
    ///   - a: the scene the link starts from, with the device's pose there.
    ///   - b: the scene the link leads to, with the device's pose there.
    /// - Returns: a link from `a.scene` to `b.scene`.
    public static func between(
        _ a: (scene: String, pose: DeviceTransform),
        _ b: (scene: String, pose: DeviceTransform)
    ) -> SceneLink {
        let link = RigidTransform(b.pose) * RigidTransform(a.pose).inverse
        return SceneLink(from: a.scene, to: b.scene, transform: link.deviceTransform)
    }
}

/// Moves poses between scenes along the calibration links that aligned devices have created.
///
/// A pure function of the links, so the scene service can keep them in whatever store it likes.
public enum SceneGraph {
    /// The pose in `target` of a device whose pose in `source` is `pose`: `T_target = L · T_source`.
    ///
    /// ```swift
    /// let link = SceneLink.between(("A", phoneInA), ("B", phoneInB))
    /// let tabletInB = SceneGraph.pose(of: tabletInA, from: "A", to: "B", links: [link])
    /// ```
    /// - Parameters:
    ///   - pose: the device's pose in `source`.
    ///   - source: the scene the device is registered in.
    ///   - target: the scene it registers in.
    ///   - links: every known link; each can be walked either way.
    /// - Returns: the pose in `target`; `pose` itself when `source == target`; nil when no chain of links joins
    ///   the two scenes.
    public static func pose(
        of pose: DeviceTransform,
        from source: String,
        to target: String,
        links: [SceneLink]
    ) -> DeviceTransform? {
        // Returned untouched: a round trip through a matrix would normalise the angles.
        if source == target { return pose }
        guard let link = transform(from: source, to: target, links: links) else { return nil }
        return (link * RigidTransform(pose)).deviceTransform
    }

    /// The transform from `source` coordinates to `target` coordinates along the fewest links.
    ///
    /// Breadth-first search, like the original's Neo4j `shortestPath` (reference 3.6). A link walked from `to` to
    /// `from` is inverted. Among paths of equal length, and between duplicate links, the one met first in `links`
    /// order wins, so the answer does not depend on hashing.
    /// - Returns: `.identity` when `source == target`; nil when they are not connected.
    public static func transform(from source: String, to target: String, links: [SceneLink]) -> RigidTransform? {
        if source == target { return .identity }

        var neighbours: [String: [(scene: String, transform: RigidTransform)]] = [:]
        for link in links where link.from != link.to {
            let forward = RigidTransform(link.transform)
            neighbours[link.from, default: []].append((link.to, forward))
            neighbours[link.to, default: []].append((link.from, forward.inverse))
        }

        // Each queued scene carries the transform from source coordinates into its own; the queue is an array
        // with a moving head.
        var reached: Set = [source]
        var queue: [(scene: String, transform: RigidTransform)] = [(source, .identity)]
        var head = 0
        while head < queue.count {
            let (scene, toScene) = queue[head]
            head += 1
            for (next, step) in neighbours[scene] ?? [] where !reached.contains(next) {
                let toNext = toScene.then(step)
                if next == target { return toNext }
                reached.insert(next)
                queue.append((next, toNext))
            }
        }
        return nil
    }
}
