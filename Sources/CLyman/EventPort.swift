import AeselSealing
import AeselWire
import CDatagramBatches
import Foundation
public import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// CLyman's UDP event port, read on a thread of its own that blocks in `recvmmsg` (`MSG_WAITFORONE`: the
/// first datagram wakes it, it takes what else waits): one system call per wake-up, where an event loop
/// needs `epoll_wait` and then a read (docs/performance.md). Each datagram goes to the
/// ``EventIngestHandler``, which is confined to this thread; jobs for it from other threads (scene and
/// session load answers) are queued and the thread is woken by a datagram it sends itself.
public final class EventPort: Sendable {
    /// Where devices send their events.
    public let localAddress: SocketAddress
    private let descriptor: Int32
    /// Sends the wake-up datagrams, from an address the reading thread recognises.
    private let waker: Int32
    private let wakerAddress: sockaddr_storage
    private let state = Mutex(State())
    /// Jobs wait, or the port is stopping: checked after every read, so that a wake-up datagram the
    /// kernel dropped (a full buffer under load) delays nothing.
    private let pending = Atomic(false)
    private let done = DispatchSemaphore(value: 0)
    /// Datagrams taken per `recvmmsg` at most.
    static let readBatch = 16

    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var stopping = false
        var started = false
        /// Set by ``start(_:)``.
        var handler: ThreadConfined?
    }

    /// Binds `host:port` (no `SO_REUSEADDR`: a second server on the port must fail to start, not take its
    /// traffic); reading starts with ``start(_:)``, until then datagrams wait in the socket's buffer.
    public init(host: String, port: Int) throws {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let descriptor = try Self.socket(bound: address, bufferSize: 4 << 20)
        do {
            // Made again from its text, so that it describes itself as an address bound by NIO does.
            guard let bound = Self.address(try Self.boundAddress(of: descriptor)), let ip = bound.ipAddress, let port = bound.port else {
                throw IOError(errnoCode: EAFNOSUPPORT, reason: "getsockname")
            }
            let localAddress = try SocketAddress(ipAddress: ip, port: port)
            // The waker sends to the port on loopback when the port listens on every address.
            let wakeTarget: SocketAddress
            switch localAddress {
            case .v4 where localAddress.ipAddress == "0.0.0.0":
                wakeTarget = try SocketAddress(ipAddress: "127.0.0.1", port: localAddress.port ?? 0)
            case .v6 where localAddress.ipAddress == "::":
                wakeTarget = try SocketAddress(ipAddress: "::1", port: localAddress.port ?? 0)
            default:
                wakeTarget = localAddress
            }
            (waker, wakerAddress) = try Self.waker(to: wakeTarget)
            self.localAddress = localAddress
            self.descriptor = descriptor
        } catch {
            Glibc.close(descriptor)
            throw error
        }
    }

    /// A socket connected to the port, and its own address.
    private static func waker(to target: SocketAddress) throws -> (Int32, sockaddr_storage) {
        let waker = try socket(bound: try SocketAddress(ipAddress: target.ipAddress ?? "127.0.0.1", port: 0), bufferSize: 1 << 16)
        do {
            try target.withSockAddr { pointer, size in
                guard Glibc.connect(waker, pointer, socklen_t(size)) == 0 else { throw IOError(errnoCode: errno, reason: "connect") }
            }
            return (waker, try boundAddress(of: waker))
        } catch {
            Glibc.close(waker)
            throw error
        }
    }

    /// Starts the reading thread: every datagram goes to `handler`, in order, on that thread.
    public func start(_ handler: EventIngestHandler) {
        let owned = state.withLock { state in
            defer { (state.started, state.handler) = (true, ThreadConfined(handler)) }
            return !state.started
        }
        precondition(owned, "an event port is read by one thread")
        handler.start(post: { [self] job in post(job) }) { [descriptor] answer, address in
            answer.withUnsafeReadableBytes { bytes in
                address.withSockAddr { pointer, size in
                    Glibc.sendto(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), pointer, socklen_t(size)) >= 0
                }
            }
        }
        let reader = ThreadConfined(handler)
        let thread = Thread { [self] in
            // The kernel's name, which perf and top show (at most 15 characters).
            Thread.current.name = "aesel-events"
            read(into: reader.value)
            done.signal()
        }
        thread.start()
    }

    /// Stops reading: the thread ends after the datagram it reads, and the port closes.
    public func stop() {
        let started = state.withLock { state in
            state.stopping = true
            return state.started
        }
        if started {
            pending.store(true, ordering: .releasing)
            wake()
            done.wait()
        }
        Glibc.close(descriptor)
        Glibc.close(waker)
    }

    /// A WebSocket device's message, read by the ingest handler on the port's thread after the datagram
    /// being read (``EventIngestHandler/read(webSocketMessage:deviceKey:sceneKey:)``).
    public func submit(webSocketMessage message: ByteBuffer, deviceKey: String, sceneKey: String) {
        guard let handler = state.withLock({ $0.handler }) else { return }
        post { handler.value.read(webSocketMessage: message, deviceKey: deviceKey, sceneKey: sceneKey) }
    }

    private func post(_ job: @escaping @Sendable () -> Void) {
        state.withLock { $0.jobs.append(job) }
        if !pending.exchange(true, ordering: .acquiringAndReleasing) { wake() }
    }

    private func wake() {
        var byte: UInt8 = 0
        _ = Glibc.send(waker, &byte, 1, Int32(MSG_DONTWAIT))
    }

    private func read(into handler: EventIngestHandler) {
        // One extra byte per slot so an oversized datagram shows as longer than the limit, not cut to it.
        let slots = DatagramSlots(count: Self.readBatch, slotSize: EventCodec.maximumDatagramSize + SealedDatagram.overhead + 1)
        // Reused while no datagram of the last batch is still held (a loading scene's, say).
        var batch = ByteBufferAllocator().buffer(capacity: slots.count * slots.slotSize)
        var wakerAddress = wakerAddress
        while true {
            let count = slots.receive(from: descriptor, waiting: true)
            if count == 0 {
                // EINTR, or an error the kernel reported on the socket (ICMP port unreachable).
                handler.readFailed()
                continue
            }
            batch.clear()
            for index in 0..<count where !Self.sameAddress(&slots.slots[index].source, &wakerAddress) {
                guard let source = Self.address(slots.slots[index].source) else { continue }
                let datagram = slots.datagram(index)
                let start = batch.writerIndex
                batch.writeBytes(datagram)
                handler.read(AddressedEnvelope(remoteAddress: source, data: batch.getSlice(at: start, length: datagram.count)!))
            }
            if pending.load(ordering: .acquiring), runJobs() { return }
        }
    }

    /// Runs what other threads queued; true once the port is stopping.
    private func runJobs() -> Bool {
        // Cleared before the jobs are taken: a job posted from here on sets it again.
        pending.store(false, ordering: .releasing)
        let (jobs, stopping) = state.withLock { state in
            defer { state.jobs.removeAll(keepingCapacity: true) }
            return (state.jobs, state.stopping)
        }
        for job in jobs { job() }
        return stopping
    }

    private static func sameAddress(_ a: inout sockaddr_storage, _ b: inout sockaddr_storage) -> Bool {
        memcmp(&a, &b, Int(a.ss_family == sa_family_t(AF_INET6) ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)) == 0
    }

    /// The source as NIO's address, without formatting its text (NIO's own reads do, for every datagram).
    private static func address(_ storage: sockaddr_storage) -> SocketAddress? {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET: return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: "") } }
        case AF_INET6: return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee, host: "") } }
        default: return nil
        }
    }

    private static func socket(bound address: SocketAddress, bufferSize: Int32) throws -> Int32 {
        let family = address.protocol == .inet6 ? AF_INET6 : AF_INET
        let descriptor = Glibc.socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var size = bufferSize
        setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        do {
            try address.withSockAddr { pointer, length in
                guard bind(descriptor, pointer, socklen_t(length)) == 0 else { throw IOError(errnoCode: errno, reason: "bind") }
            }
        } catch {
            Glibc.close(descriptor)
            throw error
        }
        return descriptor
    }

    /// The address a socket is bound to (`getsockname`).
    private static func boundAddress(of descriptor: Int32) throws -> sockaddr_storage {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        guard result == 0 else { throw IOError(errnoCode: errno, reason: "getsockname") }
        return storage
    }
}

/// The ingest handler, handed to the thread it is confined to: the port's reader, or a channel's loop.
struct ThreadConfined: @unchecked Sendable {
    let value: EventIngestHandler

    init(_ value: EventIngestHandler) { self.value = value }
}
