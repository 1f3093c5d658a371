import AeselModel
import NIOCore

/// Aesel's compact binary event, documented in docs/protocol.md. All integers are big-endian.
///
/// ```
/// magic u8 (0xAE) | version u8 (1) | msg_type u8 | flags u8 (bit 0: an epoch follows)
/// sequence u64 | timestamp u64 | [epoch u32]
/// scene key: length u8 + UTF-8 | object key: length u8 + UTF-8 | device key: length u8 + UTF-8
/// object update (1): transform, 16 x float64, row-major
/// property update (9): count u8 (1-4), then count x float64
/// ```
public enum BinaryEventFormat {
    public static let magic: UInt8 = 0xAE
    public static let version: UInt8 = 1
    /// The flag saying that the sender's epoch follows the timestamp.
    static let epochFlag: UInt8 = 0x01
    static let transformSize = 16 * 8

    static func decode(_ datagram: ByteBuffer) throws(EventDecodeError) -> ObjectEvent {
        var buffer = datagram
        guard let (magic, version, messageType, flags) = buffer.readMultipleIntegers(as: (UInt8, UInt8, UInt8, UInt8).self),
            magic == Self.magic, version == Self.version,
            let sequence = buffer.readInteger(as: UInt64.self),
            let timestamp = buffer.readInteger(as: UInt64.self),
            let epoch = flags & epochFlag == 0 ? 0 : buffer.readInteger(as: UInt32.self),
            let scene = readKey(&buffer),
            let object = readKey(&buffer),
            let device = readKey(&buffer)
        else { throw .malformed }
        // Keyframe and action updates (16, 20, 24, 28) are JSON only.
        guard let kind = EventKind(rawValue: Int(messageType)) else { throw .unsupportedMessageType }
        guard !scene.isEmpty, !object.isEmpty else { throw .missingField }
        guard EventCodec.isValidKey(scene), EventCodec.isValidKey(object), EventCodec.isValidKey(device) else { throw .malformed }
        if kind == .propertyUpdate {
            guard let count = buffer.readInteger(as: UInt8.self), (1...4).contains(count), buffer.readableBytes >= Int(count) * 8 else {
                throw .malformed
            }
            var values: [Double] = []
            for _ in 0..<count {
                let value = Double(bitPattern: buffer.readInteger(as: UInt64.self)!)
                guard value.isFinite else { throw .malformed }
                values.append(value)
            }
            return ObjectEvent(kind: kind, sceneKey: scene, objectKey: object, values: values, sequence: sequence, epoch: epoch, timestamp: timestamp, senderDeviceKey: device)
        }
        guard buffer.readableBytes >= transformSize else { throw .malformed }
        var elements = SIMD16<Double>()
        for index in 0..<16 {
            let value = Double(bitPattern: buffer.readInteger(as: UInt64.self)!)
            guard value.isFinite else { throw .malformed }
            elements[index] = value
        }
        return ObjectEvent(
            kind: kind,
            sceneKey: scene,
            objectKey: object,
            transform: Transform(elements: elements),
            sequence: sequence,
            epoch: epoch,
            timestamp: timestamp,
            senderDeviceKey: device
        )
    }

    static func encode(_ event: ObjectEvent, into buffer: inout ByteBuffer) {
        buffer.writeMultipleIntegers(magic, version, UInt8(truncatingIfNeeded: event.kind.rawValue), event.epoch == 0 ? 0 : epochFlag)
        buffer.writeMultipleIntegers(event.sequence, event.timestamp)
        if event.epoch != 0 { buffer.writeInteger(event.epoch) }
        writeKey(event.sceneKey, into: &buffer)
        writeKey(event.objectKey, into: &buffer)
        writeKey(event.senderDeviceKey, into: &buffer)
        if event.kind == .propertyUpdate {
            let values = event.values.prefix(4)
            buffer.writeInteger(UInt8(values.count))
            for value in values { buffer.writeInteger(value.bitPattern) }
            return
        }
        for index in 0..<16 {
            buffer.writeInteger(event.transform.elements[index].bitPattern)
        }
    }

    private static func readKey(_ buffer: inout ByteBuffer) -> String? {
        guard let length = buffer.readInteger(as: UInt8.self) else { return nil }
        return buffer.readString(length: Int(length))
    }

    /// Keys longer than 255 bytes cannot be expressed; the HTTP API never issues such keys.
    private static func writeKey(_ key: String, into buffer: inout ByteBuffer) {
        let utf8 = key.utf8.prefix(255)
        buffer.writeInteger(UInt8(utf8.count))
        buffer.writeBytes(utf8)
    }
}
