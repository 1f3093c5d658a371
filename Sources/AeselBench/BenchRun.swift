import AeselTesting
import CLyman
public import AeselModel
import AeselSealing
import AeselWire
import CDatagramBatches
import Foundation
import Histogram
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The load of one run: S scenes of D devices, each sending R updates per second for T seconds.
public struct BenchLoad: Sendable, Codable {
    public var scenes: Int
    public var devicesPerScene: Int
    public var ratePerDevice: Double
    public var seconds: Double
    public var warmupSeconds: Double
    public var format: EventFormat

    public init(scenes: Int, devicesPerScene: Int, ratePerDevice: Double, seconds: Double, warmupSeconds: Double = 0.5, format: EventFormat) {
        self.scenes = scenes
        self.devicesPerScene = devicesPerScene
        self.ratePerDevice = ratePerDevice
        self.seconds = seconds
        self.warmupSeconds = warmupSeconds
        self.format = format
    }

    public var inputPerSecond: Double { Double(scenes * devicesPerScene) * ratePerDevice }
}

/// What one run measured. Latencies are end to end, from the sender's clock in the event to the kernel's
/// stamp of its arrival on a receiving device's socket, in microseconds.
public struct BenchResult: Sendable, Codable {
    public var target: String
    public var load: BenchLoad
    public var sent: Int
    public var expected: Int
    public var delivered: Int
    public var lossPercent: Double
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var p999: Double
    public var max: Double
    public var deliveredPerSecond: Double
    /// The input rate the load generator really kept in the measured window (all devices); under the
    /// requested `load.inputPerSecond` when it fell behind.
    public var sentPerSecond: Double
    /// With `--rounds`: each round's own figures, of which this result merges the latency runs' (or, for
    /// `--find-max`, is the median round's).
    public var rounds: [BenchResult] = []

    /// The generator kept pace: it sent at least 99% of the requested rate.
    public var keptPace: Bool { sentPerSecond >= load.inputPerSecond * 0.99 }
}

/// A simulated device: its own socket (it sends from the address it registered) and the object it moves.
struct SimulatedDevice: Sendable {
    let socket: UDPSocket
    let key: String
    let sceneKey: String
    var objectKey: String
    /// With sealed events: it seals what it sends and opens what it receives, as a real device would.
    var session: DeviceSession?
}

/// What one run, or several merged, recorded: the raw latency histogram and counts.
struct BenchSample {
    var load: BenchLoad
    var histogram: Histogram<UInt64>
    var sent: Int
    var delivered: Int
    /// How long the generator took to send what it counted (past the window when it fell behind).
    var sendingSeconds: Double

    /// Both runs' figures together, as if measured in one window as long as both.
    func merged(with other: BenchSample) -> BenchSample {
        var merged = self
        merged.histogram.add(other.histogram)
        merged.sent += other.sent
        merged.delivered += other.delivered
        merged.sendingSeconds += other.sendingSeconds
        merged.load.seconds += other.load.seconds
        return merged
    }

    func result(target: String) -> BenchResult {
        let expected = sent * (load.devicesPerScene - 1)
        func micros(_ percentile: Double) -> Double { Double(histogram.valueAtPercentile(percentile)) / 1000 }
        return BenchResult(
            target: target,
            load: load,
            sent: sent,
            expected: expected,
            delivered: delivered,
            lossPercent: expected == 0 ? 0 : Double(Swift.max(0, expected - delivered)) * 100 / Double(expected),
            p50: micros(50),
            p90: micros(90),
            p99: micros(99),
            p999: micros(99.9),
            max: Double(histogram.max) / 1000,
            deliveredPerSecond: Double(delivered) / load.seconds,
            sentPerSecond: Double(sent) / sendingSeconds
        )
    }
}

/// Drives one run: a sender thread paces the updates, a receiver thread reads every device's socket.
enum BenchRun {
    static func run(devices: [SimulatedDevice], destination: sockaddr_in, load: BenchLoad) -> BenchSample {
        let interval = 1e9 / (Double(devices.count) * load.ratePerDevice)
        let start = monotonicNanoseconds() + 20_000_000
        let measureStart = start + UInt64(load.warmupSeconds * 1e9)
        let end = measureStart + UInt64(load.seconds * 1e9)
        let stop = StopFlag()

        let copiesPerEvent = load.devicesPerScene - 1
        let expectedCount = Int(Double(devices.count) * load.ratePerDevice * (load.warmupSeconds + load.seconds) * 1.1) * copiesPerEvent
        let receiver = Worker {
            receive(devices: devices, expectedCount: expectedCount, measureStart: measureStart, stop: stop)
        }
        let (sent, lastSentAt) = Worker {
            send(devices: devices, destination: destination, format: load.format, interval: interval, start: start, measureStart: measureStart, end: end)
        }.join()
        // Let the last datagrams arrive.
        sleepUntil(nanoseconds: monotonicNanoseconds() + 300_000_000)
        stop.flag.store(true, ordering: .relaxed)
        let (histogram, delivered) = receiver.join()
        return BenchSample(
            load: load, histogram: histogram, sent: sent, delivered: delivered,
            // A sender that fell behind sends its last updates after the window's end.
            sendingSeconds: Double(Swift.max(end, lastSentAt) - measureStart) / 1e9)
    }

    /// Returns how many updates were sent inside the measured window, and when the last one was.
    private static func send(
        devices: [SimulatedDevice], destination: sockaddr_in, format: EventFormat, interval: Double,
        start: UInt64, measureStart: UInt64, end: UInt64
    ) -> (count: Int, lastSentAt: UInt64) {
        // Sequence numbers must keep growing across runs on the same objects, or the server drops the
        // later runs' events as stale: start from the clock in microseconds.
        var sequences = [UInt64](repeating: start / 1000, count: devices.count)
        var buffer = ByteBufferAllocator().buffer(capacity: 1024)
        var sealed = [UInt8](repeating: 0, count: 1024 + SealedDatagram.overhead)
        var counted = 0
        var lastSentAt = start
        var index = 0
        while true {
            let due = start + UInt64(Double(index) * interval)
            if due >= end { break }
            if due > monotonicNanoseconds() { sleepUntil(nanoseconds: due) }
            let slot = index % devices.count
            let device = devices[slot]
            sequences[slot] += 1
            let now = monotonicNanoseconds()
            let angle = Double(sequences[slot]) / 100
            let event = ObjectEvent(
                sceneKey: device.sceneKey,
                objectKey: device.objectKey,
                transform: Transform(rowMajor: [cos(angle), 0, sin(angle), Double(slot), 0, 1, 0, 0, -sin(angle), 0, cos(angle), 0]),
                sequence: sequences[slot],
                timestamp: now,
                senderDeviceKey: format == .binary ? device.key : ""
            )
            buffer.clear()
            EventCodec.encode(event, as: format, into: &buffer)
            buffer.withUnsafeReadableBytes { plaintext in
                guard let session = device.session else {
                    _ = device.socket.send(plaintext, to: destination)
                    return
                }
                sealed.withUnsafeMutableBytes { output in
                    let count = session.sealer.seal(plaintext, into: output)
                    _ = device.socket.send(UnsafeRawBufferPointer(rebasing: output[0..<count]), to: destination)
                }
            }
            if now >= measureStart { counted += 1 }
            lastSentAt = now
            index += 1
        }
        return (counted, lastSentAt)
    }

    /// Reads every device's socket in batches. A copy's latency ends at the kernel's stamp of its arrival
    /// on the device's socket, so the time it then waits for this one thread is not counted as the
    /// server's. While the run lasts the thread only copies each datagram aside; opening and decoding
    /// them waits for the run's end, so the harness's own work stays off the two cores the relay is
    /// measured on (a real device opens its copies on its own CPU, not the server's).
    private static func receive(devices: [SimulatedDevice], expectedCount: Int, measureStart: UInt64, stop: StopFlag) -> (Histogram<UInt64>, Int) {
        var log = ArrivalLog(expectedCount: expectedCount)
        for device in devices { _ = aesel_enable_arrival_timestamps(device.socket.fd) }
        var pollers = devices.map { pollfd(fd: $0.socket.fd, events: Int16(POLLIN), revents: 0) }
        let slots = DatagramSlots()
        while !stop.flag.load(ordering: .relaxed) {
            guard poll(&pollers, nfds_t(pollers.count), 20) > 0 else { continue }
            for index in pollers.indices where pollers[index].revents != 0 {
                while true {
                    let count = slots.receive(from: devices[index].socket.fd)
                    guard count > 0 else { break }
                    for slot in 0..<count {
                        let arrival = slots.slots[slot].arrival
                        log.append(slots.datagram(slot), device: index, arrival: arrival > 0 ? UInt64(arrival) : realtimeNanoseconds())
                    }
                }
            }
        }
        // Arrival stamps are on CLOCK_REALTIME, the events' timestamps on CLOCK_MONOTONIC.
        let realtimeAhead = realtimeNanoseconds() &- monotonicNanoseconds()
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        var delivered = 0
        log.forEach { datagram, device, arrival in
            guard let sentAt = timestamp(of: datagram, session: devices[device].session), sentAt >= measureStart else { return }
            let arrival = arrival &- realtimeAhead
            delivered += 1
            _ = histogram.record(arrival > sentAt ? arrival - sentAt : 0)
        }
        return (histogram, delivered)
    }

    /// The sender's timestamp in a received event, in either format, opened first when it is sealed.
    private static func timestamp(of datagram: UnsafeRawBufferPointer, session: DeviceSession?) -> UInt64? {
        var event = ByteBuffer(bytes: datagram)
        if let session {
            guard case .opened(let plaintext) = session.open(event) else { return nil }
            event = plaintext
        }
        return try? EventCodec.decode(event).timestamp
    }
}

/// Received datagrams kept raw, with their device and arrival stamp, in chunks that are never moved:
/// appending one is a copy into memory already there, without a reallocation while a run is measured.
struct ArrivalLog: ~Copyable {
    private struct Entry {
        var chunk: Int32
        var device: Int32
        var offset: Int32
        var length: Int32
        var arrival: UInt64
    }

    private static let chunkSize = 1 << 24
    private var chunks: [UnsafeMutableRawBufferPointer] = []
    private var used = 0
    private var entries: [Entry] = []

    init(expectedCount: Int) {
        entries.reserveCapacity(expectedCount)
        addChunk()
    }

    deinit {
        for chunk in chunks { chunk.deallocate() }
    }

    mutating func append(_ datagram: UnsafeRawBufferPointer, device: Int, arrival: UInt64) {
        if used + datagram.count > Self.chunkSize { addChunk() }
        let chunk = chunks[chunks.count - 1]
        UnsafeMutableRawBufferPointer(rebasing: chunk[used..<(used + datagram.count)]).copyMemory(from: datagram)
        entries.append(Entry(chunk: Int32(chunks.count - 1), device: Int32(device), offset: Int32(used), length: Int32(datagram.count), arrival: arrival))
        used += (datagram.count + 7) & ~7
    }

    func forEach(_ body: (UnsafeRawBufferPointer, Int, UInt64) -> Void) {
        for entry in entries {
            let start = Int(entry.offset)
            body(UnsafeRawBufferPointer(rebasing: chunks[Int(entry.chunk)][start..<(start + Int(entry.length))]), Int(entry.device), entry.arrival)
        }
    }

    private mutating func addChunk() {
        chunks.append(.allocate(byteCount: Self.chunkSize, alignment: 8))
        used = 0
    }
}

final class StopFlag: Sendable {
    let flag = Atomic<Bool>(false)
}

/// A thread that runs one closure and hands back its result.
final class Worker<Result: Sendable>: @unchecked Sendable {
    // @unchecked: `result` is written once by the thread before `done` is signalled, read after the wait.
    private var result: Result?
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () -> Result) {
        let thread = Thread { [self] in
            result = body()
            done.signal()
        }
        thread.stackSize = 1 << 22
        thread.start()
    }

    func join() -> Result {
        done.wait()
        return result!
    }
}
