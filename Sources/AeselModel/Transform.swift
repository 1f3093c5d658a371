/// A 4x4 affine transform, stored row-major: element `row * 4 + column`.
///
/// This is the layout of the original Aesel wire format, so the translation sits at indices 3, 7 and 11.
/// `SIMD16` keeps the 16 values inline: no heap allocation on the event path.
public struct Transform: Sendable, Hashable, Codable {
    public var elements: SIMD16<Double>

    public static let identity = Transform(
        elements: SIMD16(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1)
    )

    public init(elements: SIMD16<Double>) {
        self.elements = elements
    }

    /// Builds a transform from up to 16 row-major values; missing values keep the identity's.
    public init<C: Collection>(rowMajor values: C) where C.Element == Double {
        var elements = Transform.identity.elements
        for (index, value) in zip(0..<16, values) {
            elements[index] = value
        }
        self.elements = elements
    }

    public subscript(row row: Int, column column: Int) -> Double {
        get { elements[row * 4 + column] }
        set { elements[row * 4 + column] = newValue }
    }

    public var translation: SIMD3<Double> {
        SIMD3(elements[3], elements[7], elements[11])
    }

    /// The 16 values, row-major.
    public var rowMajor: [Double] {
        (0..<16).map { elements[$0] }
    }

    public init(from decoder: any Decoder) throws {
        let values = try [Double](from: decoder)
        guard values.count <= 16 else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "a transform has at most 16 numbers")
            )
        }
        self.init(rowMajor: values)
    }

    public func encode(to encoder: any Encoder) throws {
        try rowMajor.encode(to: encoder)
    }
}
