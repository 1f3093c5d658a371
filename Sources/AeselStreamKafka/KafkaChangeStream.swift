public import AeselModel
public import AeselStream
import AeselWire
import CRdKafka
import Foundation
import NIOCore
import Synchronization
import NIOConcurrencyHelpers

/// A Kafka change stream: `kafka://HOST:PORT/TOPIC`. The message key is the scene, so order holds per
/// scene; CrazyIvans consume as members of one consumer group.
public struct KafkaEndpoint: Sendable, Hashable, CustomStringConvertible {
    public let brokers: String
    public let topic: String

    public init?(streamURL: String) {
        guard streamURL.hasPrefix("kafka://") else { return nil }
        let rest = streamURL.dropFirst("kafka://".count)
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        brokers = String(rest[..<slash])
        topic = String(rest[rest.index(after: slash)...])
        guard !brokers.isEmpty, !topic.isEmpty else { return nil }
    }

    public var description: String { "kafka://\(brokers)/\(topic)" }
}


/// The message key of the producer's heartbeats; scene keys never start with NUL.
let heartbeatKey = "\u{0}heartbeat"

/// librdkafka handles are thread-safe (librdkafka's documentation), and these are never reassigned.
struct KafkaHandle: @unchecked Sendable {
    let raw: OpaquePointer
}

/// Builds a librdkafka configuration, failing on the first setting it refuses.
func kafkaConfiguration(_ settings: [String: String]) throws -> OpaquePointer {
    let configuration = rd_kafka_conf_new()!
    var message = [CChar](repeating: 0, count: 512)
    for (name, value) in settings where rd_kafka_conf_set(configuration, name, value, &message, message.count) != RD_KAFKA_CONF_OK {
        rd_kafka_conf_destroy(configuration)
        throw StreamError(.backend, "\(name)=\(value): " + String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    return configuration
}

/// CLyman's side: a producer set for latency (1 ms of batching, no Nagle, leader acknowledgement). `publish`
/// never blocks: when librdkafka's queue is full, or the broker does not acknowledge an event within
/// `message.timeout.ms` (its delivery report), the event is dropped and counted. A thread serves
/// librdkafka's callbacks and sends a heartbeat (CLyman's UDP endpoint) every 100 ms.
public final class KafkaPublisher: ChangeStream {
    /// Flags shared with the polling thread.
    private final class State: Sendable {
        let dropped = Atomic<Int>(0)
        let healthy = Atomic<Bool>(false)
        /// The topic's partition count, from the last metadata answer: heartbeats go to each.
        let partitions = Atomic<Int>(1)
    }

    private let producer: KafkaHandle
    private let topic: KafkaHandle
    private let state: State
    private let poller: StreamThread

    public init(endpoint: KafkaEndpoint, announcement: String) throws {
        let state = State()
        self.state = state
        let configuration = try kafkaConfiguration([
            "bootstrap.servers": endpoint.brokers,
            // One millisecond of batching: at 4,800 events/s, one request per event overwhelmed the
            // Tansu broker (72% of events late past the benchmark's window); batching delivers them all.
            "linger.ms": "1",
            "acks": "1",
            "socket.nagle.disable": "true",
            "queue.buffering.max.messages": "100000",
            "message.timeout.ms": "5000",
        ])
        // Events the broker refuses or that time out after enqueueing are counted as dropped.
        rd_kafka_conf_set_opaque(configuration, Unmanaged.passUnretained(state).toOpaque())
        rd_kafka_conf_set_dr_msg_cb(configuration) { _, report, opaque in
            guard let report, let opaque, report.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR else { return }
            let isHeartbeat = report.pointee.key_len > 0 && report.pointee.key.load(as: UInt8.self) == 0
            if !isHeartbeat { Unmanaged<State>.fromOpaque(opaque).takeUnretainedValue().dropped.add(1, ordering: .relaxed) }
        }
        var message = [CChar](repeating: 0, count: 512)
        guard let producer = rd_kafka_new(RD_KAFKA_PRODUCER, configuration, &message, message.count) else {
            throw StreamError(.backend, "rd_kafka_new: " + String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        guard let topicHandle = rd_kafka_topic_new(producer, endpoint.topic, nil) else {
            rd_kafka_destroy(producer)
            throw StreamError(.backend, "rd_kafka_topic_new \(endpoint.topic): " + String(cString: rd_kafka_err2str(rd_kafka_last_error())))
        }
        self.producer = KafkaHandle(raw: producer)
        topic = KafkaHandle(raw: topicHandle)
        let (producerHandle, topic) = (self.producer, self.topic)
        poller = StreamThread { thread in
            let key = Array(heartbeatKey.utf8)
            let body = Array(announcement.utf8)
            var nextHeartbeat = Date()
            var nextHealthCheck = Date()
            while thread.isRunning {
                rd_kafka_poll(producerHandle.raw, 20)
                if Date() >= nextHeartbeat {
                    nextHeartbeat = Date().addingTimeInterval(0.1)
                    // To every partition, so that every consumer of the group hears it.
                    for partition in 0..<Int32(state.partitions.load(ordering: .relaxed)) {
                        body.withUnsafeBytes { body in
                            key.withUnsafeBytes { key in
                                _ = rd_kafka_produce(topic.raw, partition, RD_KAFKA_MSG_F_COPY, UnsafeMutableRawPointer(mutating: body.baseAddress), body.count, key.baseAddress, key.count, nil)
                            }
                        }
                    }
                }
                if Date() >= nextHealthCheck {
                    nextHealthCheck = Date().addingTimeInterval(1)
                    // Healthy while the broker answers a metadata request.
                    var metadata: UnsafePointer<rd_kafka_metadata>?
                    let answered = rd_kafka_metadata(producerHandle.raw, 0, topic.raw, &metadata, 500) == RD_KAFKA_RESP_ERR_NO_ERROR
                    if let metadata {
                        if metadata.pointee.topic_cnt > 0, metadata.pointee.topics[0].partition_cnt > 0 {
                            state.partitions.store(Int(metadata.pointee.topics[0].partition_cnt), ordering: .relaxed)
                        }
                        rd_kafka_metadata_destroy(metadata)
                    }
                    state.healthy.store(answered, ordering: .relaxed)
                }
            }
            // Hand what is queued to the broker before the handles go.
            rd_kafka_flush(producerHandle.raw, 2000)
            rd_kafka_topic_destroy(topic.raw)
            rd_kafka_destroy(producerHandle.raw)
        }
    }

    public func publish(_ event: ChangeEvent) {
        var body = ByteBufferAllocator().buffer(capacity: 512)
        ChangeEventCodec.encode(event, into: &body)
        let key = Array(event.sceneKey.utf8)
        let result = body.withUnsafeReadableBytes { body in
            key.withUnsafeBytes { key in
                rd_kafka_produce(topic.raw, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, UnsafeMutableRawPointer(mutating: body.baseAddress), body.count, key.baseAddress, key.count, nil)
            }
        }
        if result != 0 { state.dropped.add(1, ordering: .relaxed) }
    }

    public var isHealthy: Bool { state.healthy.load(ordering: .relaxed) }

    public var droppedCount: Int { state.dropped.load(ordering: .relaxed) }

    /// Stops after flushing what is queued (at most 2 s) and releases the producer.
    public func stop() {
        poller.stop(timeout: 5)
    }
}

/// CrazyIvan's side: a consumer in group `group`, on a thread of its own, that hands each event to the
/// fan-out on that thread, in the order of its partition. It starts at the newest offsets; it reports ready
/// once the first heartbeat arrives, and healthy while they keep arriving.
public final class KafkaSubscriber: StreamReceiver {
    private let consumer: KafkaHandle
    private let heartbeats: HeartbeatWatch
    private let errors = Atomic<Int>(0)
    private let thread = NIOLockedValueBox<StreamThread?>(nil)

    public init(endpoint: KafkaEndpoint, group: String, subscriber: any ChangeStreamSubscriber) throws {
        heartbeats = HeartbeatWatch(stream: endpoint.description, timeout: .seconds(2))
        let configuration = try kafkaConfiguration([
            "bootstrap.servers": endpoint.brokers,
            "group.id": group,
            "auto.offset.reset": "latest",
            // No committed offsets: a restarted CrazyIvan starts at the newest events, never replaying
            // those (and the heartbeats) of while it was away.
            "enable.auto.commit": "false",
            // Measured with the Tansu broker (platform notes): a short session makes joining take about 2 s,
            // and a fetch wait of 1 ms keeps latency near the broker's own.
            "session.timeout.ms": "3000",
            "heartbeat.interval.ms": "500",
            "fetch.wait.max.ms": "1",
            "fetch.error.backoff.ms": "10",
            "socket.nagle.disable": "true",
        ])
        var message = [CChar](repeating: 0, count: 512)
        guard let consumer = rd_kafka_new(RD_KAFKA_CONSUMER, configuration, &message, message.count) else {
            throw StreamError(.backend, "rd_kafka_new: " + String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        rd_kafka_poll_set_consumer(consumer)
        let topics = rd_kafka_topic_partition_list_new(1)
        rd_kafka_topic_partition_list_add(topics, endpoint.topic, RD_KAFKA_PARTITION_UA)
        let subscribed = rd_kafka_subscribe(consumer, topics)
        rd_kafka_topic_partition_list_destroy(topics)
        guard subscribed == RD_KAFKA_RESP_ERR_NO_ERROR else {
            rd_kafka_destroy(consumer)
            throw StreamError(.backend, "rd_kafka_subscribe: " + String(cString: rd_kafka_err2str(subscribed)))
        }
        self.consumer = KafkaHandle(raw: consumer)
        let started = StreamThread { [self] thread in receive(subscriber: subscriber, while: thread) }
        self.thread.withLockedValue { $0 = started }
    }

    public var isHealthy: Bool { heartbeats.isHealthy }

    public var rejectedCount: Int { errors.load(ordering: .relaxed) }

    public var partnerAnnouncement: String { heartbeats.lastAnnouncement }

    public func ready(timeout: Duration) async throws {
        try await heartbeats.ready(timeout: timeout)
    }

    public func stop() {
        thread.withLockedValue { $0 }?.stop(timeout: 5)
    }

    private func receive(subscriber: any ChangeStreamSubscriber, while thread: StreamThread) {
        while thread.isRunning {
            guard let message = rd_kafka_consumer_poll(consumer.raw, 100) else { continue }
            defer { rd_kafka_message_destroy(message) }
            // Errors (a broker gone, a topic not created yet) are counted; librdkafka retries by itself.
            guard message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                errors.add(1, ordering: .relaxed)
                continue
            }
            let key = message.pointee.key.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: message.pointee.key_len), as: UTF8.self) } ?? ""
            let body = message.pointee.payload.map { UnsafeRawBufferPointer(start: $0, count: message.pointee.len) } ?? UnsafeRawBufferPointer(start: nil, count: 0)
            if key == heartbeatKey {
                heartbeats.record(announcement: String(decoding: body, as: UTF8.self))
                continue
            }
            guard let event = try? ChangeEventCodec.decode(ByteBuffer(bytes: body)) else {
                errors.add(1, ordering: .relaxed)
                continue
            }
            subscriber.deliver(event)
        }
        rd_kafka_consumer_close(consumer.raw)
        rd_kafka_destroy(consumer.raw)
    }
}
