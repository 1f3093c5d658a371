import AeselModel
import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The original's JSON event (reference 2.1 and 2.3):
/// `{"msg_type":1,"key":"…","scene":"…","transform":[16 numbers]}`.
///
/// Decoding walks the bytes once without building a tree: the fields the event path needs are read,
/// every other value is skipped, and bytes after the closing brace are ignored (as rapidjson's
/// `kParseStopWhenDoneFlag` did). `seq` and `ts` are Aesel extensions, optional in both directions.
public enum JSONEventFormat {
    /// - Parameter readsSource: read `src`, the UDP change stream's sender address. Only the internal
    ///   stream may say who sent an event; on the device port the field is ignored like any unknown one.
    static func decode(_ bytes: UnsafeRawBufferPointer, readsSource: Bool = false) throws(EventDecodeError) -> ObjectEvent {
        var scanner = JSONScanner(bytes: bytes)
        var messageType: Int?
        var objectKey = ""
        var sceneKey = ""
        var transform = Transform.identity
        var values: [Double] = []
        var sequence: UInt64 = 0
        var epoch: UInt32 = 0
        var timestamp: UInt64 = 0
        var source: SocketAddress?
        var actions: Range<Int>?

        try scanner.expect(UInt8(ascii: "{"))
        if !(try scanner.consumeIf(UInt8(ascii: "}"))) {
            repeat {
                let name = try scanner.readKeyName()
                try scanner.expect(UInt8(ascii: ":"))
                switch name {
                case .messageType: messageType = try scanner.readInteger()
                case .key: objectKey = try scanner.readString()
                case .scene: sceneKey = try scanner.readString()
                case .transform: transform = try scanner.readTransform()
                case .values: values = try scanner.readValues()
                case .actions: actions = try scanner.skipValueRange()
                case .sequence: sequence = try scanner.readUnsigned()
                case .epoch:
                    guard let value = UInt32(exactly: try scanner.readUnsigned()) else { throw .wrongType }
                    epoch = value
                case .timestamp: timestamp = try scanner.readUnsigned()
                case .source where readsSource: source = SocketAddress.validated(hostPort: try scanner.readString())
                case .source, .other: try scanner.skipValue(depth: 0)
                }
            } while try scanner.consumeIf(UInt8(ascii: ","))
            try scanner.expect(UInt8(ascii: "}"))
        }

        guard let messageType else { throw .missingField }
        let kind: EventKind
        var actionUpdate: ActionUpdate?
        switch messageType {
        case EventKind.objectUpdate.rawValue: kind = .objectUpdate
        case EventKind.propertyUpdate.rawValue: kind = .propertyUpdate
        case 16, 20, 24, 28:
            guard let actions else { throw .missingField }
            actionUpdate = try decodeActions(UnsafeRawBufferPointer(rebasing: bytes[actions]), messageType: messageType)
            kind = actionUpdate!.kind
        default: throw .unsupportedMessageType
        }
        guard !objectKey.isEmpty, !sceneKey.isEmpty else { throw .missingField }
        guard EventCodec.isValidKey(objectKey), EventCodec.isValidKey(sceneKey) else { throw .malformed }
        if kind == .propertyUpdate, actionUpdate == nil, values.isEmpty { throw .missingField }
        return ObjectEvent(
            kind: kind,
            sceneKey: sceneKey,
            objectKey: objectKey,
            transform: transform,
            values: values,
            sequence: sequence,
            epoch: epoch,
            timestamp: timestamp,
            actions: actionUpdate,
            source: source
        )
    }

    /// The `actions` array of a keyframe or action update, in the shape of the HTTP API's (reference 1.4).
    /// These updates are rare next to transforms, so Foundation's decoder reads them.
    private static func decodeActions(_ json: UnsafeRawBufferPointer, messageType: Int) throws(EventDecodeError) -> ActionUpdate {
        let data = Data(json)
        // No store keeps NUL in text, as on HTTP.
        guard data.range(of: Data("\\u0000".utf8)) == nil else { throw .malformed }
        let decoder = JSONDecoder()
        let update: ActionUpdate
        do {
            switch messageType {
            case 16: update = .objectKeyframes(try decoder.decode([ObjectAction].self, from: data))
            case 20: update = .objectActions(try decoder.decode([ObjectAction].self, from: data))
            case 24: update = .propertyKeyframes(try decoder.decode([PropertyAction].self, from: data))
            default: update = .propertyActions(try decoder.decode([PropertyAction].self, from: data))
            }
        } catch {
            throw .wrongType
        }
        switch update {
        case .objectKeyframes(let actions), .objectActions(let actions):
            guard !actions.isEmpty, actions.allSatisfy({ !$0.name.isEmpty && EventCodec.isValidKey($0.name) }) else { throw .missingField }
        case .propertyKeyframes(let actions), .propertyActions(let actions):
            guard !actions.isEmpty, actions.allSatisfy({ !$0.name.isEmpty && EventCodec.isValidKey($0.name) }) else { throw .missingField }
        }
        return update
    }

    /// Writes the outbound shape of reference 2.3. Doubles print in Swift's shortest round-trip form.
    /// - Parameter includeSource: write the datagram's source address as `src` (the UDP change stream's
    ///   way to tell CrazyIvan who sent it; devices never receive it).
    static func encode(_ event: ObjectEvent, into buffer: inout ByteBuffer, includeSource: Bool = false) {
        buffer.writeStaticString("{\"msg_type\":")
        buffer.writeString(String(event.kind.rawValue))
        buffer.writeStaticString(",\"key\":")
        writeJSONString(event.objectKey, into: &buffer)
        buffer.writeStaticString(",\"scene\":")
        writeJSONString(event.sceneKey, into: &buffer)
        if event.kind == .propertyUpdate {
            buffer.writeStaticString(",\"values\":[")
            for (index, value) in event.values.enumerated() {
                if index > 0 { buffer.writeStaticString(",") }
                buffer.writeString(value.description)
            }
            buffer.writeStaticString("],\"actions\":[]")
        } else {
            buffer.writeStaticString(",\"transform\":[")
            for index in 0..<16 {
                if index > 0 { buffer.writeStaticString(",") }
                buffer.writeString(event.transform.elements[index].description)
            }
            buffer.writeStaticString("],\"assets\":[],\"actions\":[]")
        }
        if event.sequence != 0 {
            buffer.writeStaticString(",\"seq\":")
            buffer.writeString(String(event.sequence))
        }
        if event.epoch != 0 {
            buffer.writeStaticString(",\"epoch\":")
            buffer.writeString(String(event.epoch))
        }
        if event.timestamp != 0 {
            buffer.writeStaticString(",\"ts\":")
            buffer.writeString(String(event.timestamp))
        }
        if includeSource, let source = event.source, let host = source.ipAddressWithScope, let port = source.port {
            buffer.writeStaticString(",\"src\":")
            writeJSONString(source.protocol == .inet6 ? "[\(host)]:\(port)" : "\(host):\(port)", into: &buffer)
        }
        buffer.writeStaticString("}")
    }

    static func writeJSONString(_ string: String, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("\"")
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
            case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
            case 0..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                buffer.writeBytes([UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: buffer.writeInteger(byte)
            }
        }
        buffer.writeStaticString("\"")
    }
}

/// The fields of an event the decoder recognises.
private enum EventField {
    case messageType, key, scene, transform, values, actions, sequence, epoch, timestamp, source, other
}

/// A forward-only JSON reader over raw bytes, just enough for one event object.
private struct JSONScanner {
    static let maximumDepth = 32
    let bytes: UnsafeRawBufferPointer
    var index = 0

    init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func peek() throws(EventDecodeError) -> UInt8 {
        skipWhitespace()
        guard index < bytes.count else { throw .malformed }
        return bytes[index]
    }

    mutating func expect(_ byte: UInt8) throws(EventDecodeError) {
        guard try peek() == byte else { throw .malformed }
        index += 1
    }

    mutating func consumeIf(_ byte: UInt8) throws(EventDecodeError) -> Bool {
        guard try peek() == byte else { return false }
        index += 1
        return true
    }

    /// Reads an object member's name and classifies it without allocating.
    mutating func readKeyName() throws(EventDecodeError) -> EventField {
        let (start, end, escaped) = try scanString()
        if escaped {
            return Self.classify(Array(try decodeString(start: start, end: end).utf8)[...])
        }
        return Self.classify(bytes[start..<end])
    }

    private static func classify<C: Collection<UInt8>>(_ name: C) -> EventField {
        if name.elementsEqual("msg_type".utf8) { return .messageType }
        if name.elementsEqual("key".utf8) { return .key }
        if name.elementsEqual("scene".utf8) { return .scene }
        if name.elementsEqual("transform".utf8) { return .transform }
        if name.elementsEqual("values".utf8) { return .values }
        if name.elementsEqual("actions".utf8) { return .actions }
        if name.elementsEqual("seq".utf8) { return .sequence }
        if name.elementsEqual("epoch".utf8) { return .epoch }
        if name.elementsEqual("ts".utf8) { return .timestamp }
        if name.elementsEqual("src".utf8) { return .source }
        return .other
    }

    mutating func readString() throws(EventDecodeError) -> String {
        guard try peek() == UInt8(ascii: "\"") else { throw .wrongType }
        let (start, end, escaped) = try scanString()
        if escaped { return try decodeString(start: start, end: end) }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
    }

    /// Moves past a string and returns the range of its contents.
    mutating func scanString() throws(EventDecodeError) -> (start: Int, end: Int, escaped: Bool) {
        guard try peek() == UInt8(ascii: "\"") else { throw .malformed }
        index += 1
        let start = index
        var escaped = false
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return (start, index - 1, escaped)
            case UInt8(ascii: "\\"):
                escaped = true
                index += 2
            case 0..<0x20:
                throw .malformed
            default:
                index += 1
            }
        }
        throw .malformed
    }

    private func decodeString(start: Int, end: Int) throws(EventDecodeError) -> String {
        var scalars = String.UnicodeScalarView()
        var utf8Run: [UInt8] = []
        var position = start
        func flushRun() {
            if !utf8Run.isEmpty {
                scalars.append(contentsOf: String(decoding: utf8Run, as: UTF8.self).unicodeScalars)
                utf8Run.removeAll()
            }
        }
        while position < end {
            let byte = bytes[position]
            guard byte == UInt8(ascii: "\\") else {
                utf8Run.append(byte)
                position += 1
                continue
            }
            guard position + 1 < end else { throw .malformed }
            let escape = bytes[position + 1]
            position += 2
            switch escape {
            case UInt8(ascii: "\""): utf8Run.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): utf8Run.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): utf8Run.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): utf8Run.append(0x08)
            case UInt8(ascii: "f"): utf8Run.append(0x0C)
            case UInt8(ascii: "n"): utf8Run.append(0x0A)
            case UInt8(ascii: "r"): utf8Run.append(0x0D)
            case UInt8(ascii: "t"): utf8Run.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4(at: position, end: end)
                position += 4
                if (0xD800..<0xDC00).contains(code), position + 6 <= end,
                    bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u")
                {
                    let low = try hex4(at: position + 2, end: end)
                    if (0xDC00..<0xE000).contains(low) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        position += 6
                    }
                }
                flushRun()
                scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
            default: throw .malformed
            }
        }
        flushRun()
        return String(scalars)
    }

    private func hex4(at position: Int, end: Int) throws(EventDecodeError) -> UInt32 {
        guard position + 4 <= end else { throw .malformed }
        var value: UInt32 = 0
        for offset in 0..<4 {
            let byte = bytes[position + offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw .malformed
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    /// Reads a JSON number. Strings, booleans, arrays and objects are the wrong type.
    mutating func readNumber() throws(EventDecodeError) -> Double {
        let first = try peek()
        guard first == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
            if first == UInt8(ascii: "\"") || first == UInt8(ascii: "{") || first == UInt8(ascii: "[")
                || first == UInt8(ascii: "t") || first == UInt8(ascii: "f") || first == UInt8(ascii: "n")
            {
                throw .wrongType
            }
            throw .malformed
        }
        let start = index
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"),
                UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"):
                index += 1
            default:
                return try Self.parseDouble(UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
            }
        }
        throw .malformed  // a number cannot end the datagram: the object is not closed
    }

    /// strtod needs a terminated copy; numbers are short, so a stack buffer does.
    private static func parseDouble(_ token: UnsafeRawBufferPointer) throws(EventDecodeError) -> Double {
        guard token.count > 0, token.count < 64 else { throw .malformed }
        let result: Double? = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buffer in
            for (offset, byte) in token.enumerated() { buffer[offset] = CChar(bitPattern: byte) }
            buffer[token.count] = 0
            var end: UnsafeMutablePointer<CChar>?
            let value = strtod(buffer.baseAddress!, &end)
            guard let end, end == buffer.baseAddress! + token.count, value.isFinite else { return nil }
            return value
        }
        guard let result else { throw .malformed }
        return result
    }

    mutating func readInteger() throws(EventDecodeError) -> Int {
        let value = try readNumber()
        guard value.rounded() == value, abs(value) < 9.0e15 else { throw .wrongType }
        return Int(value)
    }

    /// A non-negative integer, exact to 64 bits: plain digits are read as digits, never through a Double
    /// (which is exact only below 2^53). Written with a fraction or an exponent, a number must be whole
    /// and below 2^53. Negative numbers and anything at or above 2^64 are the wrong type.
    mutating func readUnsigned() throws(EventDecodeError) -> UInt64 {
        let negative = try peek() == UInt8(ascii: "-")
        let start = index
        var value: UInt64 = 0
        var overflow = false
        if !negative {
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                let (times10, o1) = value.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(UInt64(bytes[index] - UInt8(ascii: "0")))
                overflow = overflow || o1 || o2
                value = sum
                index += 1
            }
            let fractionOrExponent = index < bytes.count && (bytes[index] == UInt8(ascii: ".") || bytes[index] | 0x20 == UInt8(ascii: "e"))
            if index > start, index < bytes.count, !fractionOrExponent {
                guard !overflow else { throw .wrongType }
                return value
            }
        }
        index = start
        let number = try readNumber()
        guard number.rounded() == number, number >= 0, number < 0x1p53 else { throw .wrongType }
        return UInt64(number)
    }

    mutating func readTransform() throws(EventDecodeError) -> Transform {
        guard try peek() == UInt8(ascii: "[") else { throw .wrongType }
        index += 1
        var transform = Transform.identity
        if try consumeIf(UInt8(ascii: "]")) { return transform }
        var count = 0
        repeat {
            let value = try readNumber()
            guard count < 16 else { throw .wrongType }
            transform.elements[count] = value
            count += 1
        } while try consumeIf(UInt8(ascii: ","))
        try expect(UInt8(ascii: "]"))
        return transform
    }

    /// A property's 1 to 4 plain numbers.
    mutating func readValues() throws(EventDecodeError) -> [Double] {
        guard try peek() == UInt8(ascii: "[") else { throw .wrongType }
        index += 1
        var values: [Double] = []
        if try consumeIf(UInt8(ascii: "]")) { return values }
        repeat {
            let value = try readNumber()
            guard values.count < 4 else { throw .wrongType }
            values.append(value)
        } while try consumeIf(UInt8(ascii: ","))
        try expect(UInt8(ascii: "]"))
        return values
    }

    /// Skips any JSON value, checking its syntax, and returns where it lies.
    mutating func skipValueRange() throws(EventDecodeError) -> Range<Int> {
        _ = try peek()
        let start = index
        try skipValue(depth: 0)
        return start..<index
    }

    /// Skips any JSON value, checking its syntax.
    mutating func skipValue(depth: Int) throws(EventDecodeError) {
        guard depth < Self.maximumDepth else { throw .malformed }
        switch try peek() {
        case UInt8(ascii: "\""):
            _ = try scanString()
        case UInt8(ascii: "{"):
            index += 1
            if try consumeIf(UInt8(ascii: "}")) { return }
            repeat {
                _ = try scanString()
                try expect(UInt8(ascii: ":"))
                try skipValue(depth: depth + 1)
            } while try consumeIf(UInt8(ascii: ","))
            try expect(UInt8(ascii: "}"))
        case UInt8(ascii: "["):
            index += 1
            if try consumeIf(UInt8(ascii: "]")) { return }
            repeat {
                try skipValue(depth: depth + 1)
            } while try consumeIf(UInt8(ascii: ","))
            try expect(UInt8(ascii: "]"))
        case UInt8(ascii: "t"): try skipLiteral("true")
        case UInt8(ascii: "f"): try skipLiteral("false")
        case UInt8(ascii: "n"): try skipLiteral("null")
        default: _ = try readNumber()
        }
    }

    private mutating func skipLiteral(_ literal: StaticString) throws(EventDecodeError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw .malformed }
        let matches = literal.withUTF8Buffer { expected in
            expected.elementsEqual(bytes[index..<index + count])
        }
        guard matches else { throw .malformed }
        index += count
    }
}
