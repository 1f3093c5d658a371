import AeselSealing
import CDatagramBatches
public import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// CrazyIvan's sending socket: a non-blocking UDP socket that any thread may send on.
///
/// The fan-out runs on whichever thread an event arrives on (the UDP event loop with the in-process
/// stream, the ZeroMQ or Kafka receive thread otherwise), so that handing an event over never costs a
/// second thread wake-up. Each batch of copies is one `sendmmsg` with `MSG_DONTWAIT`: a full send buffer
/// drops and counts instead of blocking, and a refused address fails one datagram, never the socket.
public final class FanOutSocket: Sendable {
    /// Datagrams per `sendmmsg` call (the kernel's limit, UIO_MAXIOV).
    static let batchLimit = 1024
    /// Scratch space for the sealed copies of one batch: a batch ends early when it is full.
    static let sealingSpace = 1 << 20

    private let descriptor: CInt
    private let closed = Atomic<Bool>(false)
    public let localAddress: SocketAddress

    /// Binds a socket to `host` on a port of the kernel's choosing.
    public init(host: String, sendBufferSize: Int = 4 << 20) throws {
        let bindAddress = try SocketAddress.makeAddressResolvingHost(host, port: 0)
        let family = bindAddress.protocol == .inet ? AF_INET : AF_INET6
        let descriptor = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var size = CInt(sendBufferSize)
        setsockopt(descriptor, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<CInt>.size))
        let bound = bindAddress.withSockAddr { address, length in bind(descriptor, address, socklen_t(length)) }
        guard bound == 0 else {
            let code = errno
            Glibc.close(descriptor)
            throw IOError(errnoCode: code, reason: "bind \(host)")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        // sin_port and sin6_port both sit at offset 2.
        let port = withUnsafeBytes(of: storage) { Int(UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self))) }
        self.descriptor = descriptor
        localAddress = try SocketAddress(ipAddress: bindAddress.ipAddress ?? host, port: port)
    }

    /// Sends one datagram to each recipient `choose` gives a payload for: 0 for the first of `payloads`,
    /// 1 for the second, nil to skip; sealed for each recipient with a sealer. Returns how many were meant
    /// to go and how many the kernel took.
    func send(to recipients: [Recipient], payloads: (ByteBuffer, ByteBuffer?), choose: (Recipient) -> Int?) -> (wanted: Int, sent: Int) {
        guard !closed.load(ordering: .relaxed) else { return (recipients.count, 0) }
        return payloads.0.withUnsafeReadableBytes { first in
            guard let second = payloads.1 else {
                return send(to: recipients, buffers: (first, first), choose: choose)
            }
            return second.withUnsafeReadableBytes { second in
                send(to: recipients, buffers: (first, second), choose: choose)
            }
        }
    }

    private func send(to recipients: [Recipient], buffers: (UnsafeRawBufferPointer, UnsafeRawBufferPointer), choose: (Recipient) -> Int?) -> (wanted: Int, sent: Int) {
        let batch = min(recipients.count, Self.batchLimit)
        guard batch > 0 else { return (0, 0) }
        let sealedSlot = max(buffers.0.count, buffers.1.count) + SealedDatagram.overhead
        let sealedSlots = recipients.contains { $0.sealer != nil } ? max(1, min(batch, Self.sealingSpace / sealedSlot)) : 0
        // Scratch space on the stack (the standard library moves it to the heap only when it is too big
        // for the stack): no allocation per event in an ordinary scene.
        return withUnsafeTemporaryAllocation(byteCount: sealedSlots * sealedSlot, alignment: 16) { sealingSpace in
            send(to: recipients, buffers: buffers, choose: choose, batch: batch, sealing: sealedSlots > 0 ? sealingSpace : nil,
                 sealedSlots: sealedSlots, sealedSlot: sealedSlot)
        }
    }

    private func send(
        to recipients: [Recipient], buffers: (UnsafeRawBufferPointer, UnsafeRawBufferPointer), choose: (Recipient) -> Int?, batch: Int,
        sealing: UnsafeMutableRawBufferPointer?, sealedSlots: Int, sealedSlot: Int
    ) -> (wanted: Int, sent: Int) {
        withUnsafeTemporaryAllocation(of: aesel_datagram.self, capacity: batch) { datagrams in
            withUnsafeTemporaryAllocation(of: sockaddr_storage.self, capacity: batch) { addresses in
                var wanted = 0
                var sent = 0
                var filled = 0
                var sealedFilled = 0
                var full = false
                for recipient in recipients {
                    guard let choice = choose(recipient) else { continue }
                    wanted += 1
                    if full { continue }  // nothing more goes out: do not seal for nothing
                    var buffer = choice == 0 ? buffers.0 : buffers.1
                    if let sealer = recipient.sealer, let sealing {
                        let slot = UnsafeMutableRawBufferPointer(rebasing: sealing[(sealedFilled * sealedSlot)..<((sealedFilled + 1) * sealedSlot)])
                        buffer = UnsafeRawBufferPointer(rebasing: slot[0..<sealer.seal(buffer, into: slot)])
                        sealedFilled += 1
                    }
                    let name = UnsafeMutableRawPointer(addresses.baseAddress! + filled)
                    let length = recipient.address.withSockAddr { source, length in
                        name.copyMemory(from: source, byteCount: length)
                        return length
                    }
                    datagrams[filled] = aesel_datagram(
                        address: name.assumingMemoryBound(to: sockaddr.self), addressLength: socklen_t(length),
                        payload: buffer.baseAddress, payloadLength: buffer.count)
                    filled += 1
                    if filled == batch || (sealedSlots > 0 && sealedFilled == sealedSlots) {
                        if !full { sent += send(datagrams.baseAddress!, count: filled, full: &full) }
                        filled = 0
                        sealedFilled = 0
                    }
                }
                if filled > 0, !full { sent += send(datagrams.baseAddress!, count: filled, full: &full) }
                return (wanted, sent)
            }
        }
    }

    /// Sends prepared datagrams. Sets `full` when the send buffer is full: the rest, and later batches
    /// of the event, are dropped rather than waited for.
    private func send(_ datagrams: UnsafePointer<aesel_datagram>, count: Int, full: inout Bool) -> Int {
        var sent = 0
        var offset = 0
        while offset < count {
            let result = aesel_send_datagrams(descriptor, datagrams + offset, UInt32(count - offset))
            if result > 0 {
                sent += Int(result)
                offset += Int(result)
            } else if result < 0, errno == EINTR {
                continue
            } else if result < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS {
                full = true
                return sent
            } else {
                offset += 1  // the kernel refused this address: skip it, send the others
            }
        }
        return sent
    }

    /// Stops sending: later sends are refused (and counted), while the descriptor stays open until the
    /// socket is released, so a send still running (a scene load finishing) never hits a reused descriptor.
    public func close() {
        closed.store(true, ordering: .relaxed)
    }

    deinit {
        _ = Glibc.close(descriptor)
    }
}
