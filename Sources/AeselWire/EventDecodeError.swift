/// Why a datagram was not accepted as an event. Each case is a drop reason in the metrics.
public enum EventDecodeError: Error, Sendable, Hashable, CaseIterable {
    /// Larger than ``EventCodec/maximumDatagramSize``.
    case oversized
    /// Not JSON, cut short, or not our binary header.
    case malformed
    /// A known field with the wrong JSON type, e.g. `"msg_type":"1"`.
    case wrongType
    /// `msg_type`, `key` or `scene` is missing or empty.
    case missingField
    /// A `msg_type` the event path does not handle.
    case unsupportedMessageType

    /// The label used for this reason in metrics.
    public var label: String {
        switch self {
        case .oversized: "oversized"
        case .malformed: "malformed"
        case .wrongType: "wrong_type"
        case .missingField: "missing_field"
        case .unsupportedMessageType: "unsupported_msg_type"
        }
    }
}
