import AeselModel
import Foundation

/// Lists, vectors and actions are stored as JSON text, readable with the sqlite3 shell; transforms as
/// 16 little-endian float64s. PostgresStore uses the same encodings.
package enum ColumnCoding {
    package static func json<T: Encodable>(_ value: T) -> String {
        String(decoding: (try? JSONEncoder().encode(value)) ?? Data("[]".utf8), as: UTF8.self)
    }

    package static func decode<T: Decodable>(_ text: String) -> T? {
        try? JSONDecoder().decode(T.self, from: Data(text.utf8))
    }

    package static func vector(_ text: String) -> SIMD3<Double> {
        decode(text) ?? .zero
    }

    /// A transform is 16 little-endian float64s: cheap to write on every write-behind flush.
    package static func blob(_ transform: Transform) -> Data {
        var data = Data(capacity: 128)
        for index in 0..<16 {
            withUnsafeBytes(of: transform.elements[index].bitPattern.littleEndian) { data.append(contentsOf: $0) }
        }
        return data
    }

    package static func transform(_ data: Data) -> Transform {
        guard data.count == 128 else { return .identity }
        var elements = SIMD16<Double>()
        data.withUnsafeBytes { bytes in
            for index in 0..<16 {
                elements[index] = Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)))
            }
        }
        return Transform(elements: elements)
    }
}
