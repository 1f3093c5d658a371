// What a ZeroMQ or Kafka change stream message body meets in CrazyIvan: `ChangeEventCodec.decode`.
//
// Invariants: no trap; the same answer whatever the reader index; an update carries a valid binary event;
// whatever decodes re-encodes to bytes that decode to the same change event.
import AeselModel
import AeselWire
import FuzzSupport
import NIOCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChangeEventCodec(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let decoded = decode(Fuzz.plain(data, size))
    let shifted = decode(Fuzz.shifted(data, size))
    Fuzz.check(decoded == shifted, "decode depends on the reader index: \(decoded) vs \(shifted)")
    guard case .success(let event) = decoded else { return 0 }
    switch event {
    case .update(let update):
        Fuzz.check(EventCodec.isValidKey(update.sceneKey) && EventCodec.isValidKey(update.objectKey) && !update.sceneKey.isEmpty, "an update with an invalid key")
        Fuzz.check((0..<16).allSatisfy { update.transform.elements[$0].isFinite } && update.values.allSatisfy(\.isFinite), "numbers that are not finite")
    case .transaction(let transaction):
        // The scene key of a transaction is not checked on decoding (CLyman's HTTP routes made it); once
        // invalid UTF-8 is repaired it may be longer than the 255 bytes the encoder writes.
        guard transaction.sceneKey.utf8.count <= 255 else { return 0 }
    }
    var buffer = ByteBuffer()
    ChangeEventCodec.encode(event, into: &buffer)
    let again = decode(buffer)
    Fuzz.check(again == .success(event), "round trip: \(again) for \(event)")
    return 0
}

func decode(_ buffer: ByteBuffer) -> Result<ChangeEvent, EventDecodeError> {
    do throws(EventDecodeError) {
        return .success(try ChangeEventCodec.decode(buffer))
    } catch {
        return .failure(error)
    }
}
