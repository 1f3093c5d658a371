import CoreMetrics
import AeselModel
public import AeselStream
import AeselWire
public import NIOCore

/// CLyman's UDP ingest: decode each datagram once, drop what is bad, stale or aimed at an object another
/// device has locked, forward it to the change stream, then hand it to the write-behind persister.
/// Forward first, persist after.
///
/// Lives on the UDP channel's event loop; its state is confined there, so it needs no lock.
public final class EventIngestHandler: ChannelInboundHandler {
    public typealias InboundIn = AddressedEnvelope<ByteBuffer>

    /// Bounds the memory a flood of made-up object keys can take; clearing only forgets staleness.
    static let maximumTrackedObjects = 1 << 20

    private let stream: any ChangeStream
    private let writeBehind: TransformWriteBehind
    private let metrics: IngestMetrics
    private let locks: ObjectLocks
    private let senders: any SenderDirectory
    /// Newest sequence number seen per object, for numbered events only.
    private var newestSequence: [String: UInt64] = [:]

    public init(stream: any ChangeStream, writeBehind: TransformWriteBehind, metrics: IngestMetrics, locks: ObjectLocks, senders: any SenderDirectory) {
        self.stream = stream
        self.writeBehind = writeBehind
        self.metrics = metrics
        self.locks = locks
        self.senders = senders
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = Self.unwrapInboundIn(data)
        metrics.received.increment()
        var event: ObjectEvent
        do {
            event = try EventCodec.decode(envelope.data)
        } catch {
            metrics.dropped(error)
            return
        }
        event.source = envelope.remoteAddress
        // Before the staleness check, so that another device's refused event cannot raise the sequence.
        if event.kind == .objectUpdate, let owner = locks.owner(of: event.objectKey), owner != sender(of: event) {
            metrics.locked.increment()
            return
        }
        guard accept(event) else {
            metrics.stale.increment()
            return
        }
        stream.publish(.update(event))
        writeBehind.record(event)
    }

    /// The registered device at the datagram's source address. A device key named in a binary event is
    /// not proof of identity, so locks go by address.
    private func sender(of event: ObjectEvent) -> String? {
        event.source.flatMap { senders.deviceKey(in: event.sceneKey, at: $0) }
    }

    /// A numbered event older than (or a duplicate of) one already seen for its object is stale.
    private func accept(_ event: ObjectEvent) -> Bool {
        guard event.sequence != 0 else { return true }
        if let newest = newestSequence[event.objectKey], event.sequence <= newest {
            return false
        }
        if newestSequence.count >= Self.maximumTrackedObjects {
            newestSequence.removeAll(keepingCapacity: true)
        }
        newestSequence[event.objectKey] = event.sequence
        return true
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A UDP read error (e.g. ICMP port unreachable reported on the socket) must not close the channel.
        metrics.readErrors.increment()
    }
}
