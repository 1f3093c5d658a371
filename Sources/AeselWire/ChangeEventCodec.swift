public import AeselModel
public import NIOCore

/// How a change event crosses a process boundary (the ZeroMQ and Kafka change streams). The stream's
/// topic or message key carries the scene; this is the body:
///
/// ```
/// kind u8: 1 update, 2 transaction
/// update:      source address: length u8 + IP text (0: none), port u16; then the binary event (docs/protocol.md)
/// transaction: msg_type u16, scene key: length u8 + UTF-8, then the event's JSON
/// ```
public enum ChangeEventCodec {
    static let update: UInt8 = 1
    static let transaction: UInt8 = 2

    public static func encode(_ event: ChangeEvent, into buffer: inout ByteBuffer) {
        switch event {
        case .update(let update):
            buffer.writeInteger(Self.update)
            let host = update.source?.ipAddressWithScope ?? ""
            buffer.writeInteger(UInt8(host.utf8.count))
            buffer.writeString(host)
            buffer.writeInteger(UInt16(update.source?.port ?? 0))
            BinaryEventFormat.encode(update, into: &buffer)
        case .transaction(let transaction):
            buffer.writeInteger(Self.transaction)
            buffer.writeInteger(UInt16(truncatingIfNeeded: transaction.messageType))
            let scene = transaction.sceneKey.utf8.prefix(255)
            buffer.writeInteger(UInt8(scene.count))
            buffer.writeBytes(scene)
            buffer.writeImmutableBuffer(transaction.json)
        }
    }

    public static func decode(_ buffer: ByteBuffer) throws(EventDecodeError) -> ChangeEvent {
        var buffer = buffer
        guard let kind = buffer.readInteger(as: UInt8.self) else { throw .malformed }
        switch kind {
        case Self.update:
            guard let hostLength = buffer.readInteger(as: UInt8.self), let host = buffer.readString(length: Int(hostLength)),
                let port = buffer.readInteger(as: UInt16.self)
            else { throw .malformed }
            var event = try BinaryEventFormat.decode(buffer)
            if !host.isEmpty { event.source = SocketAddress.validated(host: host, port: Int(port)) }
            return .update(event)
        case Self.transaction:
            guard let messageType = buffer.readInteger(as: UInt16.self), let sceneLength = buffer.readInteger(as: UInt8.self),
                let scene = buffer.readString(length: Int(sceneLength))
            else { throw .malformed }
            return .transaction(TransactionEvent(sceneKey: scene, messageType: Int(messageType), json: buffer))
        default:
            throw .malformed
        }
    }
}
