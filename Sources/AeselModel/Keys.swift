/// Generates the keys the original hands out: 24 lower-case hex digits for objects (a Mongo ObjectId's
/// shape) and a UUID string for scenes and devices.
public enum KeyGenerator {
    public static func objectKey() -> String {
        var generator = SystemRandomNumberGenerator()
        var key = ""
        key.reserveCapacity(24)
        for _ in 0..<12 {
            let byte = UInt8.random(in: 0...255, using: &generator)
            key += String(byte >> 4, radix: 16) + String(byte & 0xF, radix: 16)
        }
        return key
    }

    public static func uuid() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = (bytes[6] & 0x0F) | 0x40  // version 4
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
        let hex = bytes.map { String($0 >> 4, radix: 16) + String($0 & 0xF, radix: 16) }.joined()
        let parts = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { range in
            String(hex[hex.index(hex.startIndex, offsetBy: range.lowerBound)..<hex.index(hex.startIndex, offsetBy: range.upperBound)])
        }
        return parts.joined(separator: "-")
    }
}
