public import AeselModel
public import NIOCore

/// The original's CLyman-to-CrazyIvan framing (reference 2.3 and 3.9): `scene key`, a newline, then the
/// event's JSON, in one datagram. The original CrazyIvan forwards the JSON verbatim.
///
/// Aesel's CLyman adds `"src":"ip:port"` to events from devices, so that an Aesel CrazyIvan can leave out
/// the sender; messages without it (transactions, or events from an original CLyman) go to every device
/// as they are, as the original did.
public enum UDPStreamFraming {
    public static func encode(_ event: ChangeEvent, into buffer: inout ByteBuffer) {
        buffer.writeString(event.sceneKey)
        buffer.writeStaticString("\n")
        switch event {
        case .update(let update): JSONEventFormat.encode(update, into: &buffer, includeSource: true)
        case .transaction(let transaction): buffer.writeImmutableBuffer(transaction.json)
        }
    }

    public static func decode(_ datagram: ByteBuffer) throws(EventDecodeError) -> ChangeEvent {
        guard let newline = datagram.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else { throw .malformed }
        let sceneLength = newline - datagram.readerIndex
        guard sceneLength > 0, let scene = datagram.getString(at: datagram.readerIndex, length: sceneLength),
            EventCodec.isValidKey(scene)
        else { throw .malformed }
        let json = datagram.getSlice(at: newline + 1, length: datagram.readableBytes - sceneLength - 1) ?? ByteBuffer()
        if let update = try? EventCodec.decode(json, readsSource: true), update.source != nil, update.sceneKey == scene {
            return .update(update)
        }
        return .transaction(TransactionEvent(sceneKey: scene, messageType: 0, json: json))
    }
}
