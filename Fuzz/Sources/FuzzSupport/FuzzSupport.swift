public import NIOCore

/// What every fuzzer shares: the input as buffers, and failed invariants as crashes libFuzzer records.
public enum Fuzz {
    /// Bytes before the input in ``shifted(_:_:)``: decoders must work on a buffer whose reader index is not 0,
    /// as they get from NIO's channels and from slices.
    public static let shift = 7

    /// The input in a buffer of its own, reader index 0.
    public static func plain(_ data: UnsafePointer<UInt8>?, _ size: Int) -> ByteBuffer {
        ByteBuffer(bytes: UnsafeRawBufferPointer(start: data, count: size))
    }

    /// The input after ``shift`` bytes of 0xAE and `\n` (bytes the decoders look for), reader index past them,
    /// and more of them after the input, beyond the writer index.
    public static func shifted(_ data: UnsafePointer<UInt8>?, _ size: Int) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: shift + size + 8)
        for index in 0..<shift { buffer.writeInteger(index % 2 == 0 ? UInt8(0xAE) : UInt8(ascii: "\n")) }
        buffer.writeBytes(UnsafeRawBufferPointer(start: data, count: size))
        // Junk past the writer index: a decoder reading beyond its readable bytes would see it.
        buffer.setBytes([UInt8](repeating: UInt8(ascii: "\n"), count: 8), at: buffer.writerIndex)
        buffer.moveReaderIndex(forwardBy: shift)
        return buffer
    }

    /// Stops the run with `message` when an invariant does not hold: libFuzzer saves the input as a crash.
    public static func check(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
        if !condition { fatalError("invariant failed: \(message())", file: file, line: line) }
    }
}
