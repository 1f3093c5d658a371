// What a UDP datagram meets: CLyman's event decoder (`EventCodec.decode`, JSON and binary), and on a
// device (AeselClient) the same decoder and `SceneMovedNotice.sceneKey(in:)`.
//
// Invariants: the decoders never trap; they give the same answer whatever the buffer's reader index; an
// accepted event has valid keys and finite numbers, and re-encoded in either format it decodes to itself
// (minus what that format does not carry); the actions of a keyframe or action update re-encode to
// themselves; a notice re-encoded names the same scene.
import AeselModel
import AeselWire
import Foundation
import FuzzSupport
import NIOCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDatagram(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let plain = Fuzz.plain(data, size)
    let decoded = decode(plain)
    let shifted = decode(Fuzz.shifted(data, size))
    Fuzz.check(decoded == shifted, "decode depends on the reader index: \(decoded) vs \(shifted)")
    if case .success(let event) = decoded { checkEvent(event) }

    let scene = SceneMovedNotice.sceneKey(in: plain)
    Fuzz.check(scene == SceneMovedNotice.sceneKey(in: Fuzz.shifted(data, size)), "sceneKey(in:) depends on the reader index")
    if let scene {
        Fuzz.check(!scene.isEmpty, "a notice with an empty scene key")
        if scene.utf8.count <= 255 {
            let notice = SceneMovedNotice.encode(sceneKey: scene, allocator: ByteBufferAllocator())
            Fuzz.check(SceneMovedNotice.sceneKey(in: notice) == scene, "a notice for \(scene) does not name it")
            Fuzz.check(decode(notice) == .failure(.unsupportedMessageType), "a notice decodes as an event: \(decode(notice))")
        }
    }
    return 0
}

func decode(_ buffer: ByteBuffer) -> Result<ObjectEvent, EventDecodeError> {
    do throws(EventDecodeError) {
        return .success(try EventCodec.decode(buffer))
    } catch {
        return .failure(error)
    }
}

func checkEvent(_ event: ObjectEvent) {
    Fuzz.check(!event.sceneKey.isEmpty && !event.objectKey.isEmpty, "an event with an empty key")
    Fuzz.check(EventCodec.isValidKey(event.sceneKey) && EventCodec.isValidKey(event.objectKey) && EventCodec.isValidKey(event.senderDeviceKey), "an event with an invalid key")
    Fuzz.check((0..<16).allSatisfy { event.transform.elements[$0].isFinite }, "a transform that is not finite")
    Fuzz.check(event.values.allSatisfy(\.isFinite) && event.values.count <= 4, "values: \(event.values)")
    if let actions = event.actions {
        checkActions(actions)
        return  // they leave CLyman as the stored record's JSON, never re-encoded as an event
    }
    if event.kind == .propertyUpdate { Fuzz.check(!event.values.isEmpty, "a property update without values") }

    // Binary carries everything but the source address; a property update has no transform, an object
    // update no values.
    var binary = event
    binary.source = nil
    if binary.kind == .propertyUpdate { binary.transform = .identity } else { binary.values = [] }
    let binaryRoundTrip = decode(EventCodec.encode(event, as: .binary, allocator: ByteBufferAllocator()))
    Fuzz.check(binaryRoundTrip == .success(binary), "binary round trip: \(binaryRoundTrip) for \(binary)")

    var json = binary
    json.senderDeviceKey = ""
    let jsonBuffer = EventCodec.encode(event, as: .json, allocator: ByteBufferAllocator())
    let jsonRoundTrip = decode(jsonBuffer)
    Fuzz.check(jsonRoundTrip == .success(json), "JSON round trip: \(jsonRoundTrip) for \(json) from \(String(buffer: jsonBuffer))")
}

func checkActions(_ update: ActionUpdate) {
    func roundTrip<Keyframe>(_ actions: [Action<Keyframe>]) {
        Fuzz.check(!actions.isEmpty && actions.allSatisfy { !$0.name.isEmpty && EventCodec.isValidKey($0.name) }, "actions without a valid name: \(actions)")
        let again = (try? JSONEncoder().encode(actions)).flatMap { try? JSONDecoder().decode([Action<Keyframe>].self, from: $0) }
        Fuzz.check(again == actions, "actions do not re-encode to themselves: \(String(describing: again)) for \(actions)")
    }
    switch update {
    case .objectKeyframes(let actions), .objectActions(let actions): roundTrip(actions)
    case .propertyKeyframes(let actions), .propertyActions(let actions): roundTrip(actions)
    }
}
