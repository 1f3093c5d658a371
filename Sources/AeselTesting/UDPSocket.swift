import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A plain blocking IPv4 UDP socket on loopback, for the simulated devices and the baseline relay: no
/// framework between the benchmark and the kernel.
package struct UDPSocket: Sendable {
    package let fd: Int32
    package let port: UInt16

    /// Binds 127.0.0.1:`port` (0 for any free port).
    package init(port: UInt16 = 0, bufferBytes: Int32 = 4 << 20) throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw SystemCallError(call: "socket", code: errno) }
        var size = bufferBytes
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var address = UDPSocket.loopback(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            Glibc.close(fd)
            throw SystemCallError(call: "bind", code: errno)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        self.port = UInt16(bigEndian: address.sin_port)
    }

    package static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    @discardableResult
    package func send(_ bytes: UnsafeRawBufferPointer, to address: sockaddr_in) -> Int {
        var address = address
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

    /// Receives one datagram into `buffer`; returns its length and source, or nil when nothing is waiting
    /// (with `MSG_DONTWAIT`) or the socket is closed.
    package func receive(into buffer: UnsafeMutableRawBufferPointer, flags: Int32 = 0) -> (count: Int, source: sockaddr_in)? {
        var source = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let count = withUnsafeMutablePointer(to: &source) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                recvfrom(fd, buffer.baseAddress, buffer.count, flags, $0, &length)
            }
        }
        return count >= 0 ? (count, source) : nil
    }

    /// Sends `bytes` as they are to a loopback port.
    package func sendRaw(_ bytes: [UInt8], to port: UInt16) {
        bytes.withUnsafeBytes { _ = send($0, to: Self.loopback(port: port)) }
    }

    /// The next datagram as it came, or nil after the socket's receive timeout.
    package func receiveRaw() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { receive(into: $0)?.count }
        return count.map { Array(buffer[0..<$0]) }
    }

    package func close() {
        #if canImport(Glibc)
        _ = Glibc.close(fd)
        #else
        _ = Darwin.close(fd)
        #endif
    }
}

/// A system call that failed, with its errno.
public struct SystemCallError: Error, CustomStringConvertible {
    public var call: String
    public var code: Int32

    public var description: String { "\(call) failed: \(String(cString: strerror(code)))" }
}
