public import NIOCore

/// The sealed datagram (docs/protocol.md, Sealed events): a clear 24-byte header, then the datagram a
/// plaintext device would send (a JSON or binary event, a scene-moved notice) encrypted with the device's
/// session key, then the 16-byte tag. The header and the scene and device keys are the associated data.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 1 | magic `0xAF` |
/// | 1 | 1 | version `1` |
/// | 2 | 1 | direction: `1` device to pair, `2` pair to device |
/// | 3 | 1 | `0` |
/// | 4 | 8 | session key id, big-endian |
/// | 12 | 12 | nonce: the sender's 4-byte salt, then its 8-byte counter, big-endian |
public enum SealedDatagram {
    public static let magic: UInt8 = 0xAF
    public static let version: UInt8 = 1
    public static let headerSize = 24
    public static let tagSize = 16
    /// What sealing adds to a datagram.
    public static let overhead = headerSize + tagSize

    public enum Direction: UInt8, Sendable {
        case toPair = 1
        case toDevice = 2
    }

    /// What the clear header says.
    public struct Header: Sendable, Hashable {
        public var direction: Direction
        public var keyID: UInt64
        public var salt: UInt32
        public var counter: UInt64

        public init(direction: Direction, keyID: UInt64, salt: UInt32, counter: UInt64) {
            self.direction = direction
            self.keyID = keyID
            self.salt = salt
            self.counter = counter
        }
    }

    /// Whether the datagram is meant as a sealed one (its first byte); it may still be malformed.
    public static func isSealed(_ datagram: ByteBuffer) -> Bool {
        datagram.getInteger(at: datagram.readerIndex, as: UInt8.self) == magic
    }

    /// The header of a sealed datagram, or nil when it is too short to hold a header and a tag, or its
    /// version or reserved byte is not ours.
    public static func header(of datagram: ByteBuffer) -> Header? {
        let start = datagram.readerIndex
        guard datagram.readableBytes >= overhead,
            datagram.getInteger(at: start, as: UInt8.self) == magic,
            datagram.getInteger(at: start + 1, as: UInt8.self) == version,
            let direction = datagram.getInteger(at: start + 2, as: UInt8.self).flatMap(Direction.init(rawValue:)),
            datagram.getInteger(at: start + 3, as: UInt8.self) == 0,
            let keyID = datagram.getInteger(at: start + 4, as: UInt64.self),
            let salt = datagram.getInteger(at: start + 12, as: UInt32.self),
            let counter = datagram.getInteger(at: start + 16, as: UInt64.self)
        else { return nil }
        return Header(direction: direction, keyID: keyID, salt: salt, counter: counter)
    }

    static func write(_ header: Header, to bytes: UnsafeMutableRawBufferPointer) {
        bytes[0] = magic
        bytes[1] = version
        bytes[2] = header.direction.rawValue
        bytes[3] = 0
        bytes.storeBytes(of: header.keyID.bigEndian, toByteOffset: 4, as: UInt64.self)
        bytes.storeBytes(of: header.salt.bigEndian, toByteOffset: 12, as: UInt32.self)
        bytes.storeBytes(of: header.counter.bigEndian, toByteOffset: 16, as: UInt64.self)
    }
}
