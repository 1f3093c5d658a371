// What a datagram of the UDP change stream (`scene\njson`, the original's CLyman-to-CrazyIvan framing)
// meets in CrazyIvan: `UDPStreamFraming.decode`, which runs `EventCodec.decode` on the JSON part.
//
// Invariants: no trap; the same answer whatever the reader index; an update has a source and the
// framing's scene; whatever decodes re-encodes to a datagram that decodes to the same change event (an
// object update's `values`, and a property update's transform, which the JSON format does not carry,
// aside).
import AeselModel
import AeselWire
import FuzzSupport
import NIOCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzUDPStreamFraming(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let decoded = decode(Fuzz.plain(data, size))
    let shifted = decode(Fuzz.shifted(data, size))
    Fuzz.check(decoded == shifted, "decode depends on the reader index: \(decoded) vs \(shifted)")
    guard case .success(var event) = decoded else { return 0 }
    Fuzz.check(EventCodec.isValidKey(event.sceneKey) && !event.sceneKey.isEmpty, "an invalid scene key")
    Fuzz.check(!event.sceneKey.utf8.contains(UInt8(ascii: "\n")), "a scene key with a newline")
    if case .update(var update) = event {
        Fuzz.check(update.source != nil, "an update without a source")
        if update.kind == .propertyUpdate { update.transform = .identity } else { update.values = [] }
        event = .update(update)
    }
    var buffer = ByteBuffer()
    UDPStreamFraming.encode(event, into: &buffer)
    let again = decode(buffer)
    Fuzz.check(again == .success(event), "round trip: \(again) for \(event) from \(String(buffer: buffer))")
    return 0
}

func decode(_ buffer: ByteBuffer) -> Result<ChangeEvent, EventDecodeError> {
    do throws(EventDecodeError) {
        return .success(try UDPStreamFraming.decode(buffer))
    } catch {
        return .failure(error)
    }
}
