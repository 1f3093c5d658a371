import AeselTesting
import AeselModel
import AeselSealing
import AeselWire
import CrazyIvan
import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the time of one event goes: each stage of the event path timed on its own, with the real code,
/// in this process. `aesel bench --stages` prints it.
public enum StageBreakdown {
    public struct Stage: Codable, Sendable {
        public var name: String
        /// How many times the stage runs per event.
        public var timesPerEvent: Int
        public var medianNanoseconds: Double
        public var p99Nanoseconds: Double

        public var perEventNanoseconds: Double { medianNanoseconds * Double(timesPerEvent) }
    }

    /// - Parameter sealed: also time opening the sender's sealed datagram and sealing each copy.
    public static func measure(devicesPerScene: Int, format: EventFormat, sealed: Bool = false, iterations: Int = 20_000) throws -> [Stage] {
        let event = ObjectEvent(
            sceneKey: "5f0c7b8e-6a9e-4b59-9d0e-2f4b3c1a8d77",
            objectKey: "5b98880a270698496c36e392",
            transform: Transform(rowMajor: [1, 0, 0, 1.5, 0, 1, 0, -2.25, 0, 0, 1, 3]),
            sequence: 42,
            timestamp: 123_456_789,
            senderDeviceKey: format == .binary ? "device-0" : ""
        )
        let allocator = ByteBufferAllocator()
        let datagram = EventCodec.encode(event, as: format, allocator: allocator)
        let bytes = Array(datagram.readableBytesView)

        let sender = try UDPSocket()
        let receiver = try UDPSocket()
        defer {
            sender.close()
            receiver.close()
        }
        let receiverAddress = UDPSocket.loopback(port: receiver.port)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 8)
        defer { buffer.deallocate() }

        let cache = SceneDeviceCache()
        _ = cache.beginLoad(sceneKey: event.sceneKey)
        let recipients = (0..<devicesPerScene).compactMap { Recipient(Device(key: "device-\($0)", hostname: "127.0.0.1", port: 20_000 + $0), inScene: "scene") }
        _ = cache.finishLoad(sceneKey: event.sceneKey, devices: recipients)
        while cache.nextReplay(sceneKey: event.sceneKey) != nil {}

        var stages = [
            time("UDP hop in the kernel: sendto + recvfrom of one datagram on loopback", times: 1, iterations) {
                bytes.withUnsafeBytes { _ = sender.send($0, to: receiverAddress) }
                _ = receiver.receive(into: buffer)
            },
            time("decode the \(format.rawValue) event", times: 1, iterations) {
                _ = try? EventCodec.decode(datagram)
            },
            time("look up the scene's devices (Scene-Device cache)", times: 1, iterations) {
                _ = cache.lookup(.update(event))
            },
            time("encode the \(format.rawValue) event for the recipients", times: 1, iterations) {
                _ = EventCodec.encode(event, as: format, allocator: allocator)
            },
            time("send one copy (sendto, kernel delivery included)", times: devicesPerScene - 1, iterations) {
                bytes.withUnsafeBytes { _ = sender.send($0, to: receiverAddress) }
            } between: {
                _ = receiver.receive(into: buffer, flags: Int32(MSG_DONTWAIT))
            },
        ]
        if sealed {
            let key = EventSessionKey.generate()
            let sender = DeviceSession(key, sceneKey: event.sceneKey, deviceKey: "device-0")
            let opener = SessionOpener(SessionCipher(key, direction: .toPair, sceneKey: event.sceneKey, deviceKey: "device-0"))
            // A fresh counter for every open, sealed untimed in between: the replay window drops a repeat.
            var next = sender.seal(datagram, allocator: allocator)
            stages.insert(
                time("open the sender's sealed datagram (AES-256-GCM, replay window)", times: 1, iterations) {
                    _ = opener.open(next, header: SealedDatagram.header(of: next)!, allocator: allocator)
                } between: {
                    next = sender.seal(datagram, allocator: allocator)
                },
                at: 1)
            let recipient = SessionSealer(SessionCipher(key, direction: .toDevice, sceneKey: event.sceneKey, deviceKey: "device-1"))
            let output = UnsafeMutableRawBufferPointer.allocate(byteCount: datagram.readableBytes + SealedDatagram.overhead, alignment: 8)
            defer { output.deallocate() }
            stages.insert(
                time("seal one copy for its recipient (AES-256-GCM, into the send buffer)", times: devicesPerScene - 1, iterations) {
                    datagram.withUnsafeReadableBytes { _ = recipient.seal($0, into: output) }
                },
                at: stages.count - 1)
        }
        return stages
    }

    /// Times `body` `iterations` times (after a warm-up), running `between` untimed after each.
    private static func time(_ name: String, times: Int, _ iterations: Int, _ body: () -> Void, between: () -> Void = {}) -> Stage {
        var samples: [UInt64] = []
        samples.reserveCapacity(iterations)
        for round in 0..<(iterations + iterations / 10) {
            let start = monotonicNanoseconds()
            body()
            let elapsed = monotonicNanoseconds() - start
            between()
            if round >= iterations / 10 { samples.append(elapsed) }
        }
        samples.sort()
        return Stage(
            name: name,
            timesPerEvent: times,
            medianNanoseconds: Double(samples[samples.count / 2]),
            p99Nanoseconds: Double(samples[samples.count * 99 / 100])
        )
    }

    public static func table(_ stages: [Stage]) -> String {
        let total = stages.reduce(0) { $0 + $1.perEventNanoseconds }
        var lines = ["stage                                                                  x   median µs  p99 µs  per event µs  share"]
        for stage in stages {
            lines.append(
                stage.name.padding(toLength: 70, withPad: " ", startingAt: 0)
                    + String(format: " %2d %10.2f %7.2f %13.2f %5.0f%%", stage.timesPerEvent, stage.medianNanoseconds / 1000, stage.p99Nanoseconds / 1000, stage.perEventNanoseconds / 1000, stage.perEventNanoseconds * 100 / max(total, 1))
            )
        }
        if let largest = stages.max(by: { $0.perEventNanoseconds < $1.perEventNanoseconds }) {
            lines.append(String(format: "total %.2f µs of CPU per event; the largest stage: %@", total / 1000, largest.name))
        }
        return lines.joined(separator: "\n")
    }
}
