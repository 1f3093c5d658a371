public import AeselModel
public import NIOCore

/// A device's keepalive and the pair's answer (docs/protocol.md, "Keepalive"): a device that hears
/// nothing from its pair asks CLyman's UDP port whether it is alive; CLyman answers to the datagram's
/// source address with the device's nonce, so the device can match the answer and time the round trip,
/// and the path through any NAT stays open.
///
/// Binary: `0xAE | version 1 | type 201 (request) or 202 (answer) | flags 0 | nonce u64`, 12 bytes.
/// JSON: `{"msg_type":555,"nonce":N}` (555 is the original's PING, defined and never handled), answered
/// with `{"msg_type":556,"nonce":N}`. An answer is never longer than its request and is never itself
/// answered, so keepalives cannot amplify a flood or bounce between two servers.
public enum Keepalive {
    /// The binary header's message types of a request and of its answer.
    public static let binaryRequestType: UInt8 = 201
    public static let binaryAnswerType: UInt8 = 202
    /// The JSON `msg_type` of a request (the original's PING) and of its answer.
    public static let jsonRequestType = 555
    public static let jsonAnswerType = 556
    /// The length of either binary datagram: the first four header bytes and the nonce.
    public static let binarySize = 12

    /// What a keepalive datagram says.
    public enum Message: Sendable, Hashable {
        case request(nonce: UInt64, format: EventFormat)
        case answer(nonce: UInt64, format: EventFormat)
        /// A keepalive's type with the wrong shape: a bad length, version, flags, nonce or member.
        case malformed
    }

    /// The keepalive `datagram` holds, or nil when it is no keepalive (an event, say). A JSON object is
    /// a keepalive from the moment it names `msg_type` 555 or 556 before any member other than `nonce`;
    /// an object that starts otherwise is left to the event decoder, so an event costs a glance.
    public static func parse(_ datagram: ByteBuffer) -> Message? {
        guard let first = datagram.readableBytesView.first else { return nil }
        if first == BinaryEventFormat.magic {
            return parseBinary(datagram)
        }
        return datagram.withUnsafeReadableBytes { parseJSON($0) }
    }

    /// A keepalive request with `nonce` in `format`.
    public static func request(nonce: UInt64, as format: EventFormat, allocator: ByteBufferAllocator) -> ByteBuffer {
        encode(nonce: nonce, answer: false, as: format, allocator: allocator)
    }

    /// The answer to a request with `nonce` in `format`: as long as the shortest such request.
    public static func answer(nonce: UInt64, as format: EventFormat, allocator: ByteBufferAllocator) -> ByteBuffer {
        encode(nonce: nonce, answer: true, as: format, allocator: allocator)
    }

    private static func encode(nonce: UInt64, answer: Bool, as format: EventFormat, allocator: ByteBufferAllocator) -> ByteBuffer {
        switch format {
        case .binary:
            var buffer = allocator.buffer(capacity: binarySize)
            let type = answer ? binaryAnswerType : binaryRequestType
            buffer.writeMultipleIntegers(BinaryEventFormat.magic, BinaryEventFormat.version, type, UInt8(0), nonce)
            return buffer
        case .json:
            var buffer = allocator.buffer(capacity: 40)
            buffer.writeStaticString(answer ? "{\"msg_type\":556,\"nonce\":" : "{\"msg_type\":555,\"nonce\":")
            buffer.writeString(String(nonce))
            buffer.writeStaticString("}")
            return buffer
        }
    }

    private static func parseBinary(_ datagram: ByteBuffer) -> Message? {
        var buffer = datagram
        guard let (_, version, type, flags) = buffer.readMultipleIntegers(as: (UInt8, UInt8, UInt8, UInt8).self),
            type == binaryRequestType || type == binaryAnswerType
        else { return nil }
        guard version == BinaryEventFormat.version, flags == 0, datagram.readableBytes == binarySize, let nonce = buffer.readInteger(as: UInt64.self) else {
            return .malformed
        }
        return type == binaryRequestType ? .request(nonce: nonce, format: .binary) : .answer(nonce: nonce, format: .binary)
    }

    /// Exactly an object of the two members `msg_type` and `nonce`, in either order, with plain integer
    /// values and any JSON whitespace, and nothing but whitespace after it.
    private static func parseJSON(_ bytes: UnsafeRawBufferPointer) -> Message? {
        var scanner = KeepaliveScanner(bytes: bytes)
        var type: Int?
        var nonce: UInt64?
        // What an unexpected byte means: no keepalive (the event decoder takes it) until `msg_type` named
        // one, a malformed keepalive after.
        var unexpected: Message? { type == nil ? nil : .malformed }
        guard scanner.consume(UInt8(ascii: "{")) else { return nil }
        repeat {
            guard let member = scanner.memberName(), scanner.consume(UInt8(ascii: ":")) else { return unexpected }
            switch member {
            case .messageType:
                guard type == nil, let value = scanner.integer(), value == UInt64(jsonRequestType) || value == UInt64(jsonAnswerType) else {
                    return unexpected
                }
                type = Int(value)
            case .nonce:
                guard nonce == nil, let value = scanner.integer() else { return unexpected }
                nonce = value
            case .other:
                return unexpected
            }
        } while scanner.consume(UInt8(ascii: ","))
        guard let type else { return nil }
        guard scanner.consume(UInt8(ascii: "}")), let nonce, scanner.atEnd else { return .malformed }
        return type == jsonRequestType ? .request(nonce: nonce, format: .json) : .answer(nonce: nonce, format: .json)
    }
}

/// A forward-only reader of a keepalive's JSON; it allocates nothing, as it glances at every JSON event.
private struct KeepaliveScanner {
    enum Member {
        case messageType, nonce, other
    }

    let bytes: UnsafeRawBufferPointer
    var index = 0

    init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Only whitespace is left.
    var atEnd: Bool {
        mutating get {
            skipWhitespace()
            return index == bytes.count
        }
    }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func consume(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// A member name without escapes.
    mutating func memberName() -> Member? {
        guard consume(UInt8(ascii: "\"")) else { return nil }
        let start = index
        while index < bytes.count, bytes[index] != UInt8(ascii: "\""), bytes[index] != UInt8(ascii: "\\") { index += 1 }
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        let name = bytes[start..<index]
        index += 1
        if name.elementsEqual("msg_type".utf8) { return .messageType }
        if name.elementsEqual("nonce".utf8) { return .nonce }
        return .other
    }

    /// An unsigned 64-bit integer without sign, fraction or exponent, read exactly (as `seq` is).
    mutating func integer() -> UInt64? {
        skipWhitespace()
        let start = index
        var value: UInt64 = 0
        while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
            let (tens, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, carry) = tens.addingReportingOverflow(UInt64(bytes[index] - UInt8(ascii: "0")))
            guard !overflow, !carry else { return nil }
            value = sum
            index += 1
        }
        let fraction = index < bytes.count && (bytes[index] == UInt8(ascii: ".") || bytes[index] | 0x20 == UInt8(ascii: "e"))
        guard index > start, !fraction else { return nil }
        return value
    }
}
