import AeselServer
import AeselTesting
import AeselWire
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The floor of this machine: one socket and a plain `recvfrom`/`sendto` loop to the scene's other
/// devices, with no framework, no decoding beyond finding the scene, and no storage.
/// `aesel bench --baseline` measures it with the same devices and load as the server.
public enum BaselineRelay {
    /// Scene key to its devices, all on 127.0.0.1.
    public struct Routes: Codable, Sendable {
        public struct Device: Codable, Sendable {
            public var key: String
            public var port: UInt16
        }

        public var scenes: [String: [Device]]
    }

    /// Serves forever on 127.0.0.1:`port`; prints the ready line once bound.
    public static func run(port: UInt16, routes: Routes) throws -> Never {
        let socket = try UDPSocket(port: port)
        let table = routes.scenes.mapValues { devices in
            devices.map { (key: Array($0.key.utf8), port: $0.port, address: UDPSocket.loopback(port: $0.port)) }
        }
        ReadyLine.print(["udp": "127.0.0.1:\(socket.port)"])
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
