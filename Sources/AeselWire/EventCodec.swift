public import AeselModel
public import NIOCore

/// Decodes and encodes UDP event datagrams in both formats.
///
/// A datagram whose first byte is ``BinaryEventFormat/magic`` is binary; anything else is read as the
/// original's JSON event (reference 2.1). See docs/protocol.md.
public enum EventCodec {
    /// The largest datagram accepted as an event. Larger ones are dropped as oversized.
    public static let maximumDatagramSize = 4096

    /// Keys are at most 255 bytes of UTF-8 without NUL (PostgreSQL refuses NUL in text).
    public static func isValidKey(_ key: String) -> Bool {
        key.utf8.count <= 255 && !key.utf8.contains(0)
    }

    /// Decodes a device's datagram.
    public static func decode(_ datagram: ByteBuffer) throws(EventDecodeError) -> ObjectEvent {
        try decode(datagram, readsSource: false)
    }

    /// - Parameter readsSource: only the internal UDP change stream (`UDPStreamFraming`) passes true.
    static func decode(_ datagram: ByteBuffer, readsSource: Bool) throws(EventDecodeError) -> ObjectEvent {
        guard datagram.readableBytes <= maximumDatagramSize else { throw .oversized }
        guard let first = datagram.readableBytesView.first else { throw .malformed }
        if first == BinaryEventFormat.magic {
            return try BinaryEventFormat.decode(datagram)
        }
        return try datagram.withUnsafeReadableBytes { bytes throws(EventDecodeError) in
            try JSONEventFormat.decode(bytes, readsSource: readsSource)
        }
    }

    /// Writes `event` in `format` into `buffer`.
    public static func encode(_ event: ObjectEvent, as format: EventFormat, into buffer: inout ByteBuffer) {
        switch format {
        case .json: JSONEventFormat.encode(event, into: &buffer)
        case .binary: BinaryEventFormat.encode(event, into: &buffer)
        }
    }

    public static func encode(_ event: ObjectEvent, as format: EventFormat, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: format == .binary ? 256 : 512)
        encode(event, as: format, into: &buffer)
        return buffer
    }
}
