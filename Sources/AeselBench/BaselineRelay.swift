import AeselServer
import CLyman
import AeselTesting
import AeselWire
import CDatagramBatches
import CZeroMQ
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The floor of this machine: one socket and a plain `recvfrom`/`sendto` loop to the scene's other
/// devices, with no framework, no decoding beyond finding the scene, and no storage; or, batched, the
/// strongest such loop: every datagram waiting read with one `recvmmsg`, all their copies sent with
/// one `sendmmsg`; or joined by libzmq, the floor of a ZeroMQ change stream: one thread publishes each
/// datagram it reads, another subscribes and sends the copies of what it receives with `sendmmsg`.
/// `aesel bench --baseline` measures them with the same devices and load as the server.
public enum BaselineRelay {
    /// How the relay passes a datagram from its reading to its sending.
    public enum Mode: Sendable, Equatable {
        /// One thread: `recvfrom`, then `sendto` each copy.
        case plain
        /// One thread: a blocking `recvmmsg` (`MSG_WAITFORONE`: the first datagram wakes it, it takes what
        /// else waits), then one `sendmmsg` for every copy of the batch.
        case batched
        /// Two threads joined by a libzmq PUB/SUB pair over `ipc` or `tcp`.
        case zeroMQ(transport: String)

        /// `plain`, `batched`, `zmq+ipc` or `zmq+tcp`.
        public init?(name: String) {
            switch name {
            case "plain": self = .plain
            case "batched": self = .batched
            case "zmq+ipc", "zmq+tcp": self = .zeroMQ(transport: String(name.dropFirst(4)))
            default: return nil
            }
        }

        public var name: String {
            switch self {
            case .plain: "plain"
            case .batched: "batched"
            case .zeroMQ(let transport): "zmq+" + transport
            }
        }
    }

    /// Scene key to its devices, all on 127.0.0.1.
    public struct Routes: Codable, Sendable {
        public struct Device: Codable, Sendable {
            public var key: String
            public var port: UInt16
        }

        public var scenes: [String: [Device]]
    }

    /// Serves forever on 127.0.0.1:`port`; prints the ready line once it can relay.
    public static func run(port: UInt16, routes: Routes, mode: Mode) throws -> Never {
        let socket = try UDPSocket(port: port)
        switch mode {
        case .plain: break
        case .batched:
            ReadyLine.print(["udp": "127.0.0.1:\(socket.port)"])
            relayInBatches(read: { $0.receive(from: socket.fd, waiting: true) }, waitForMore: socket.fd, sendingOn: socket, routes: routes)
        case .zeroMQ(let transport):
            try relayThroughZeroMQ(socket, transport: transport, routes: routes)
        }
        ReadyLine.print(["udp": "127.0.0.1:\(socket.port)"])
        let table = routes.scenes.mapValues { devices in
            devices.map { (key: Array($0.key.utf8), port: $0.port, address: UDPSocket.loopback(port: $0.port)) }
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 8)
        while true {
            guard let (count, source) = socket.receive(into: buffer) else { continue }
            let datagram = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
            guard let (scene, senderKey) = sceneAndSender(datagram), let devices = table[scene] else { continue }
            let sourcePort = UInt16(bigEndian: source.sin_port)
            for device in devices {
                if let senderKey, device.key.elementsEqual(senderKey) { continue }
                if senderKey == nil && device.port == sourcePort { continue }
                socket.send(datagram, to: device.address)
            }
        }
    }

    /// Reads batches with `read` (which fills the slots it is given and returns how many, or 0 when none
    /// is waiting, after which it polls `waitForMore`), and sends every copy of a batch with one
    /// `sendmmsg` on `socket`.
    private static func relayInBatches(
        read: (DatagramSlots) -> Int, waitForMore descriptor: Int32, sendingOn socket: UDPSocket, routes: Routes
    ) -> Never {
        let devices = routes.scenes.values.flatMap { $0 }
        // The kernel reads the destinations' addresses through pointers: they stay put for good.
        let addresses = UnsafeMutablePointer<sockaddr_in>.allocate(capacity: devices.count)
        var table: [String: [(key: [UInt8], port: UInt16, address: UnsafePointer<sockaddr>)]] = [:]
        var index = 0
        for (scene, sceneDevices) in routes.scenes {
            table[scene] = sceneDevices.map { device in
                (addresses + index).initialize(to: UDPSocket.loopback(port: device.port))
                defer { index += 1 }
                return (Array(device.key.utf8), device.port, UnsafeRawPointer(addresses + index).assumingMemoryBound(to: sockaddr.self))
            }
        }
        let largestScene = routes.scenes.values.map(\.count).max() ?? 0
        let slots = DatagramSlots()
        var copies: [aesel_datagram] = []
        copies.reserveCapacity(slots.count * largestScene)
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        while true {
            let count = read(slots)
            guard count > 0 else {
                // A timeout, in case libzmq's descriptor, which signals edges, missed one.
                _ = poll(&poller, 1, 100)
                continue
            }
            copies.removeAll(keepingCapacity: true)
            for index in 0..<count {
                let datagram = slots.datagram(index)
                guard let (scene, senderKey) = sceneAndSender(datagram), let devices = table[scene] else { continue }
                let sourcePort = withUnsafeBytes(of: slots.slots[index].source) { UInt16(bigEndian: $0.load(as: sockaddr_in.self).sin_port) }
                for device in devices {
                    if let senderKey, device.key.elementsEqual(senderKey) { continue }
                    if senderKey == nil && device.port == sourcePort { continue }
                    copies.append(
                        aesel_datagram(
                            address: device.address, addressLength: socklen_t(MemoryLayout<sockaddr_in>.size), payload: datagram.baseAddress,
                            payloadLength: datagram.count))
                }
            }
            var sent = 0
            while sent < copies.count {
                let taken = copies[sent...].withUnsafeBufferPointer { aesel_send_datagrams(socket.fd, $0.baseAddress, UInt32($0.count)) }
                // A full send buffer drops the rest of the batch, as a datagram relay would.
                guard taken > 0 else { break }
                sent += Int(taken)
            }
        }
    }

    /// The publishing thread reads each datagram with `recvfrom` and publishes it, its source port in
    /// front; this thread subscribes, and relays what it receives in batches.
    private static func relayThroughZeroMQ(_ socket: UDPSocket, transport: String, routes: Routes) throws -> Never {
        func check(_ result: Int32, _ call: String) throws {
            guard result >= 0 else { throw BenchError.system(call, zmq_errno()) }
        }
        let context = zmq_ctx_new()!
        let publisher = zmq_socket(context, ZMQ_PUB)!
        let subscriber = zmq_socket(context, ZMQ_SUB)!
        switch transport {
        case "ipc": try check(zmq_bind(publisher, "ipc://\(NSTemporaryDirectory())aesel-baseline-\(getpid()).sock"), "zmq_bind")
        case "tcp": try check(zmq_bind(publisher, "tcp://127.0.0.1:*"), "zmq_bind")
        default: throw BenchError.server("no libzmq relay over \(transport): ipc or tcp")
        }
        var endpoint = [CChar](repeating: 0, count: 256)
        var endpointLength = endpoint.count
        try check(zmq_getsockopt(publisher, ZMQ_LAST_ENDPOINT, &endpoint, &endpointLength), "zmq_getsockopt")
        try check(zmq_connect(subscriber, endpoint), "zmq_connect")
        try check(zmq_setsockopt(subscriber, ZMQ_SUBSCRIBE, nil, 0), "zmq_setsockopt")
        // A subscription reaches the publisher asynchronously: wait for it before reporting ready.
        Thread.sleep(forTimeInterval: 0.3)
        let publisherAddress = UInt(bitPattern: publisher)
        Thread.detachNewThread {
            let publisher = UnsafeMutableRawPointer(bitPattern: publisherAddress)!
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536 + 2, alignment: 8)
            while true {
                guard let (count, source) = socket.receive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[2...])) else { continue }
                buffer.storeBytes(of: source.sin_port, toByteOffset: 0, as: UInt16.self)
                _ = zmq_send(publisher, buffer.baseAddress, count + 2, ZMQ_DONTWAIT)
            }
        }
        var descriptor: Int32 = 0
        var descriptorLength = MemoryLayout<Int32>.size
        try check(zmq_getsockopt(subscriber, ZMQ_FD, &descriptor, &descriptorLength), "zmq_getsockopt")
        ReadyLine.print(["udp": "127.0.0.1:\(socket.port)"])
        var message = [UInt8](repeating: 0, count: 2048 + 2)
        relayInBatches(
            read: { slots in
                // libzmq's descriptor signals "look again", not "a message waits": drain it each time.
                var count = 0
                while count < slots.count {
                    let length = Int(zmq_recv(subscriber, &message, message.count, ZMQ_DONTWAIT))
                    guard length >= 2 else { break }
                    var source = sockaddr_in()
                    source.sin_port = message.withUnsafeBytes { $0.loadUnaligned(as: UInt16.self) }
                    withUnsafeMutableBytes(of: &slots.slots[count].source) { $0.storeBytes(of: source, as: sockaddr_in.self) }
                    let payload = min(length, message.count) - 2
                    message.withUnsafeBytes { slots.slots[count].buffer.copyMemory(from: $0.baseAddress! + 2, byteCount: min(payload, slots.slotSize)) }
                    slots.slots[count].length = payload
                    count += 1
                }
                return count
            }, waitForMore: descriptor, sendingOn: socket, routes: routes)
    }

    /// The scene key and, for the binary format, the sender's device key.
    static func sceneAndSender(_ datagram: UnsafeRawBufferPointer) -> (String, UnsafeRawBufferPointer?)? {
        if datagram.first == BinaryEventFormat.magic {
            guard datagram.count > 21 else { return nil }
            let sceneLength = Int(datagram[20])
            let objectAt = 21 + sceneLength
            guard datagram.count > objectAt else { return nil }
            let deviceAt = objectAt + 1 + Int(datagram[objectAt])
            guard datagram.count > deviceAt + Int(datagram[deviceAt]) else { return nil }
            let scene = String(decoding: datagram[21..<objectAt], as: UTF8.self)
            let device = UnsafeRawBufferPointer(rebasing: datagram[(deviceAt + 1)..<(deviceAt + 1 + Int(datagram[deviceAt]))])
            return (scene, device.isEmpty ? nil : device)
        }
        let marker = Array("\"scene\":\"".utf8)
        guard let start = datagram.firstRange(of: marker)?.upperBound,
            let end = datagram[start...].firstIndex(of: UInt8(ascii: "\""))
        else { return nil }
        return (String(decoding: datagram[start..<end], as: UTF8.self), nil)
    }
}
