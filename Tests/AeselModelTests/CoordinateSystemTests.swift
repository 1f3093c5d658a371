import AeselModel
import Testing

/// Absolute tolerance for every comparison: the hand-worked numbers are exact, the rest is rounding.
private let tolerance = 1e-9

private func isClose(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> Bool {
    let difference = a - b
    return max(abs(difference.x), abs(difference.y), abs(difference.z)) <= tolerance
}

private func isClose(_ a: DeviceTransform, _ b: DeviceTransform) -> Bool {
    isClose(a.translation, b.translation) && isClose(a.rotation, b.rotation)
}

private func isClose(_ a: Matrix3x3, _ b: Matrix3x3) -> Bool {
    isClose(a.row0, b.row0) && isClose(a.row1, b.row1) && isClose(a.row2, b.row2)
}

private func isClose(_ a: RigidTransform, _ b: RigidTransform) -> Bool {
    isClose(a.rotation, b.rotation) && isClose(a.translation, b.translation)
}

private func pose(_ translation: SIMD3<Double>, _ rotation: SIMD3<Double> = .zero) -> DeviceTransform {
    DeviceTransform(translation: translation, rotation: rotation)
}

@Suite("Coordinate systems (docs/coordinates.md)")
struct CoordinateSystemTests {
    static let quarterTurn = Double.pi / 2

    // The links of the two worked examples in docs/coordinates.md.
    static let translationLink = SceneLink.between(("A", pose([1, 2, 3])), ("B", pose([4, 0, -1])))
    static let rotationLink = SceneLink.between(
        ("A", pose([1, 2, 0], [0, 0, quarterTurn])),
        ("B", pose([5, 5, 5]))
    )

    @Test("Euler angles are Rx·Ry·Rz: a vector turns about Z first, then Y, then X")
    func eulerConvention() {
        let q = Self.quarterTurn
        #expect(isClose(Matrix3x3(eulerXYZ: [q, 0, 0]) * [0, 1, 0], [0, 0, 1]))
        #expect(isClose(Matrix3x3(eulerXYZ: [0, q, 0]) * [1, 0, 0], [0, 0, -1]))
        #expect(isClose(Matrix3x3(eulerXYZ: [0, 0, q]) * [1, 0, 0], [0, 1, 0]))
        // Ry takes x to -z, then Rx takes -z to y; the other order (Ry·Rx) would give -z.
        #expect(isClose(Matrix3x3(eulerXYZ: [q, q, 0]) * [1, 0, 0], [0, 1, 0]))
    }

    @Test("Example 1: a pure translation")
    func pureTranslation() throws {
        let link = Self.translationLink
        #expect(link.from == "A" && link.to == "B")
        #expect(isClose(link.transform, pose([3, -2, -4])))
        #expect(isClose(RigidTransform(link.transform).apply(to: .zero), [3, -2, -4]))

        let tablet = try #require(
            SceneGraph.pose(of: pose([10, 0, 0], [0, 0, 0.5]), from: "A", to: "B", links: [link])
        )
        #expect(isClose(tablet, pose([13, -2, -4], [0, 0, 0.5])))
        let back = try #require(SceneGraph.pose(of: tablet, from: "B", to: "A", links: [link]))
        #expect(isClose(back, pose([10, 0, 0], [0, 0, 0.5])))
    }

    @Test("Example 2: a quarter turn about Z plus a translation")
    func quarterTurnAboutZ() throws {
        let link = Self.rotationLink
        #expect(isClose(link.transform, pose([3, 6, 5], [0, 0, -Self.quarterTurn])))
        // The aligning phone itself: its origin is (1, 2, 0) in A and (5, 5, 5) in B.
        #expect(isClose(RigidTransform(link.transform).apply(to: [1, 2, 0]), [5, 5, 5]))
        let phone = try #require(
            SceneGraph.pose(of: pose([1, 2, 0], [0, 0, Self.quarterTurn]), from: "A", to: "B", links: [link])
        )
        #expect(isClose(phone, pose([5, 5, 5])))

        let tablet = try #require(
            SceneGraph.pose(of: pose([0, 1, 0], [0, 0, Self.quarterTurn]), from: "A", to: "B", links: [link])
        )
        #expect(isClose(tablet, pose([4, 6, 5])))
        // The inverse link, B to A, by hand: Rz(+90°) and translation (6, -3, -5).
        let inverse = RigidTransform(link.transform).inverse.deviceTransform
        #expect(isClose(inverse, pose([6, -3, -5], [0, 0, Self.quarterTurn])))
    }

    @Test("A chain A→B→C walked backwards, C to A, by hand")
    func chainBackwards() throws {
        let bc = SceneLink(from: "B", to: "C", transform: pose([3, -2, -4]))
        let links = [Self.rotationLink, bc]

        let inA = try #require(SceneGraph.pose(of: pose([10, 0, 0]), from: "C", to: "A", links: links))
        #expect(isClose(inA, pose([4, 4, -1], [0, 0, Self.quarterTurn])))
        let inC = try #require(SceneGraph.pose(of: inA, from: "A", to: "C", links: links))
        #expect(isClose(inC, pose([10, 0, 0])))

        let composed = try #require(SceneGraph.transform(from: "A", to: "C", links: links))
        let expected = RigidTransform(bc.transform) * RigidTransform(Self.rotationLink.transform)
        #expect(isClose(composed, expected))
    }

    @Test("A chain built from devices' poses agrees with the scenes' true placement")
    func chainAgainstGroundTruth() throws {
        // Each scene's frame in a common world frame; a device whose world pose is P has pose W⁻¹ · P in a scene.
        let world: [String: RigidTransform] = [
            "A": RigidTransform(pose([1, -2, 0.5], [0.3, -0.7, 2.1])),
            "B": RigidTransform(pose([-4, 3, 2], [-1.2, 0.4, -2.9])),
            "C": RigidTransform(pose([0, 7, -3], [2.5, 1.1, 0.2])),
        ]
        func seen(_ device: RigidTransform, in scene: String) -> DeviceTransform {
            (world[scene]!.inverse * device).deviceTransform
        }
        let phone = RigidTransform(pose([2, 2, 2], [0.1, 0.2, 0.3]))
        let tablet = RigidTransform(pose([-1, 0, 5], [-2.0, -1.3, 1.0]))
        let headset = RigidTransform(pose([6, -5, 1], [3.0, 0.5, -0.5]))

        // The phone aligns A with B and the tablet B with C; the link directions differ on purpose.
        let links = [
            SceneLink.between(("A", seen(phone, in: "A")), ("B", seen(phone, in: "B"))),
            SceneLink.between(("C", seen(tablet, in: "C")), ("B", seen(tablet, in: "B"))),
        ]
        let fromC = try #require(SceneGraph.pose(of: seen(headset, in: "C"), from: "C", to: "A", links: links))
        #expect(isClose(RigidTransform(fromC), RigidTransform(seen(headset, in: "A"))))
        let fromA = try #require(SceneGraph.pose(of: seen(headset, in: "A"), from: "A", to: "C", links: links))
        #expect(isClose(RigidTransform(fromA), RigidTransform(seen(headset, in: "C"))))
    }

    @Test("The fewest links win, and the first of equal paths in list order")
    func shortestPath() throws {
        let direct = SceneLink(from: "A", to: "C", transform: pose([1, 0, 0]))
        // A longer, disagreeing route A→D→E→C, listed first.
        let detour = [
            SceneLink(from: "A", to: "D", transform: pose([0, 10, 0])),
            SceneLink(from: "D", to: "E", transform: pose([0, 10, 0])),
            SceneLink(from: "E", to: "C", transform: pose([0, 10, 0])),
        ]
        let moved = try #require(SceneGraph.pose(of: .identity, from: "A", to: "C", links: detour + [direct]))
        #expect(isClose(moved, pose([1, 0, 0])))

        let duplicate = SceneLink(from: "C", to: "A", transform: pose([5, 0, 0]))
        let first = try #require(SceneGraph.pose(of: .identity, from: "A", to: "C", links: [direct, duplicate]))
        #expect(isClose(first, pose([1, 0, 0])))
        let second = try #require(SceneGraph.pose(of: .identity, from: "A", to: "C", links: [duplicate, direct]))
        #expect(isClose(second, pose([-5, 0, 0])))
    }

    @Test("Unconnected or unknown scenes give nil; the same scene gives the pose untouched")
    func unconnected() {
        let links = [Self.translationLink, SceneLink(from: "C", to: "D", transform: pose([1, 1, 1]))]
        #expect(SceneGraph.pose(of: .identity, from: "A", to: "C", links: links) == nil)
        #expect(SceneGraph.pose(of: .identity, from: "D", to: "B", links: links) == nil)
        #expect(SceneGraph.pose(of: .identity, from: "A", to: "Z", links: links) == nil)
        #expect(SceneGraph.pose(of: .identity, from: "A", to: "B", links: []) == nil)
        #expect(SceneGraph.transform(from: "A", to: "C", links: links) == nil)

        let unnormalised = pose([1, 2, 3], [0, 0, 7])
        #expect(SceneGraph.pose(of: unnormalised, from: "Z", to: "Z", links: []) == unnormalised)
        #expect(SceneGraph.transform(from: "Z", to: "Z", links: []) == .identity)
    }

    @Test(
        "Euler → matrix → Euler gives the same angles away from gimbal lock",
        arguments: [
            SIMD3<Double>(0, 0, 0), [0.1, 0.2, 0.3], [-0.1, -0.2, -0.3], [3.1, 1.5, -3.1], [-3.1, -1.5, 3.1],
            [1, 0, 0], [0, 1, 0], [0, 0, 1], [2.5, -0.9, 1.7], [-2.2, 1.2, -0.4], [0.5, 1.570_796, 0.25],
        ]
    )
    func eulerRoundTrip(angles: SIMD3<Double>) {
        #expect(isClose(Matrix3x3(eulerXYZ: angles).eulerXYZ, angles))
        let transform = pose([1, -2, 3], angles)
        #expect(isClose(RigidTransform(transform).deviceTransform, transform))
    }

    @Test(
        "Angles outside the canonical ranges come back as other angles for the same rotation",
        arguments: [SIMD3<Double>(4, 0, 0), [0, 2, 0], [0, 0, -4], [7, -8, 9], [-3.5, 3.5, 10]]
    )
    func eulerEquivalentAngles(angles: SIMD3<Double>) {
        let extracted = Matrix3x3(eulerXYZ: angles).eulerXYZ
        #expect(isClose(Matrix3x3(eulerXYZ: extracted), Matrix3x3(eulerXYZ: angles)))
        #expect(abs(extracted.y) <= Self.quarterTurn)
        #expect(abs(extracted.x) <= Double.pi && abs(extracted.z) <= Double.pi)
    }

    @Test("Gimbal lock puts the whole turn in Z: Y = +90° keeps x + z, Y = -90° keeps z - x")
    func gimbalLock() {
        let q = Self.quarterTurn
        let up = Matrix3x3(eulerXYZ: [0.3, q, 0.2])
        #expect(isClose(up.eulerXYZ, [0, q, 0.5]))
        #expect(isClose(Matrix3x3(eulerXYZ: up.eulerXYZ), up))

        let down = Matrix3x3(eulerXYZ: [0.3, -q, 0.2])
        #expect(isClose(down.eulerXYZ, [0, -q, -0.1]))
        #expect(isClose(Matrix3x3(eulerXYZ: down.eulerXYZ), down))

        // Just short of the lock the angles are ill-defined, but they still rebuild the same matrix.
        let near = Matrix3x3(eulerXYZ: [1.0, q - 1e-10, -2.0])
        #expect(isClose(Matrix3x3(eulerXYZ: near.eulerXYZ), near))
    }

    @Test(
        "A transform composed with its inverse is the identity",
        arguments: [pose([0, 0, 0]), pose([1, 2, 3], [0.1, 0.2, 0.3]), pose([-7, 0.5, 12], [2.9, -1.4, -2.2])]
    )
    func inverseComposition(transform: DeviceTransform) {
        let rigid = RigidTransform(transform)
        #expect(isClose(rigid * rigid.inverse, .identity))
        #expect(isClose(rigid.inverse * rigid, .identity))
        #expect(isClose(rigid.inverse.inverse, rigid))

        let point: SIMD3<Double> = [0.5, -4, 2]
        #expect(isClose(rigid.inverse.apply(to: rigid.apply(to: point)), point))
        let other = RigidTransform(pose([3, 1, -1], [-0.6, 0.9, 1.3]))
        #expect(isClose((other * rigid).apply(to: point), other.apply(to: rigid.apply(to: point))))
        #expect(rigid.then(other) == other * rigid)
    }

    @Test("A link reproduces the aligning device's pose both ways")
    func linkReproducesAlignment() throws {
        let inA = pose([1.5, -2, 0.25], [0.4, -1.1, 2.8])
        let inB = pose([-3, 8, 1], [-2.6, 0.3, -0.9])
        let links = [SceneLink.between(("A", inA), ("B", inB))]
        let toB = try #require(SceneGraph.pose(of: inA, from: "A", to: "B", links: links))
        #expect(isClose(toB, inB))
        let toA = try #require(SceneGraph.pose(of: inB, from: "B", to: "A", links: links))
        #expect(isClose(toA, inA))
    }
}
