import AeselServer
import AeselTesting
import AeselWire
import CDatagramBatches
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The floor of this machine: one socket and a plain `recvfrom`/`sendto` loop to the scene's other
/// devices, with no framework, no decoding beyond finding the scene, and no storage; or, batched, the
/// strongest such loop: every datagram waiting read with one `recvmmsg`, all their copies sent with
/// one `sendmmsg`. `aesel bench --baseline` measures both with the same devices and load as the server.
public enum BaselineRelay {
    /// Scene key to its devices, all on 127.0.0.1.
    public struct Routes: Codable, Sendable {
        public struct Device: Codable, Sendable {
            public var key: String
            public var port: UInt16
        }

        public var scenes: [String: [Device]]
    }

    /// Serves forever on 127.0.0.1:`port`, batched or not; prints the ready line once bound.
    public static func run(port: UInt16, routes: Routes, batched: Bool) throws -> Never {
        let socket = try UDPSocket(port: port)
        ReadyLine.print(["udp": "127.0.0.1:\(socket.port)"])
        if batched { relayInBatches(socket, routes: routes) }
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

    private static func relayInBatches(_ socket: UDPSocket, routes: Routes) -> Never {
        let batch = 64
        let slotSize = 2048
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
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: batch * slotSize, alignment: 8)
        var slots = (0..<batch).map {
            aesel_received_datagram(buffer: storage.baseAddress! + $0 * slotSize, capacity: slotSize, length: 0, source: sockaddr_storage(), arrival: 0)
        }
        var copies: [aesel_datagram] = []
        copies.reserveCapacity(batch * largestScene)
        var poller = pollfd(fd: socket.fd, events: Int16(POLLIN), revents: 0)
        while true {
            let count = Int(aesel_receive_datagrams(socket.fd, &slots, UInt32(batch)))
            guard count > 0 else {
                _ = poll(&poller, 1, -1)
                continue
            }
            copies.removeAll(keepingCapacity: true)
            for slot in slots[0..<count] {
                let datagram = UnsafeRawBufferPointer(start: slot.buffer, count: min(slot.length, slotSize))
                guard let (scene, senderKey) = sceneAndSender(datagram), let devices = table[scene] else { continue }
                let sourcePort = withUnsafeBytes(of: slot.source) { UInt16(bigEndian: $0.load(as: sockaddr_in.self).sin_port) }
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
