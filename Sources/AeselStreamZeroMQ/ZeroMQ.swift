import AeselModel
import AeselStream
import CZeroMQ
import Foundation

/// Where a ZeroMQ change stream runs: `zmq+inproc://NAME` (threads of one process), `zmq+ipc:///PATH`
/// (processes of one host) or `zmq+tcp://HOST:PORT` (hosts).
public struct ZeroMQEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// The libzmq address, e.g. `ipc:///tmp/aesel.sock`.
    public let address: String

    /// Parses a `--stream` value; nil for anything that is not a `zmq+` URL with a known transport.
    public init?(streamURL: String) {
        guard streamURL.hasPrefix("zmq+") else { return nil }
        let address = String(streamURL.dropFirst(4))
        guard ["inproc://", "ipc://", "tcp://"].contains(where: { address.hasPrefix($0) && address.count > $0.count }) else { return nil }
        self.address = address
    }

    public var description: String { "zmq+" + address }
}

extension AeselError where ErrorCode == StreamErrorCode {
    /// libzmq refused `call`: its errno, in libzmq's words.
    static func zeroMQ(_ call: String, file: String = #fileID, line: Int = #line) -> StreamError {
        StreamError(.backend, "\(call): \(String(cString: zmq_strerror(zmq_errno())))", file: file, line: line)
    }
}

/// The process's libzmq context. One is shared by every socket, which `inproc://` requires.
final class ZeroMQContext: @unchecked Sendable {
    // @unchecked: libzmq documents contexts as thread-safe; the pointer is never reassigned.
    let raw: UnsafeMutableRawPointer

    static let shared = ZeroMQContext()

    private init() {
        raw = zmq_ctx_new()
    }
}

/// One libzmq socket. libzmq sockets are not thread-safe: each is used by one thread at a time, which
/// its owner guarantees (a lock around the publisher's, a single thread for the subscriber's).
final class ZeroMQSocket: @unchecked Sendable {
    // @unchecked: see above; `raw` is never reassigned and is closed once, in deinit.
    let raw: UnsafeMutableRawPointer

    init(type: Int32) throws {
        guard let raw = zmq_socket(ZeroMQContext.shared.raw, type) else { throw StreamError.zeroMQ("zmq_socket") }
        self.raw = raw
        // Close at once on shutdown rather than lingering on undelivered messages.
        try set(ZMQ_LINGER, 0)
    }

    func set(_ option: Int32, _ value: Int32) throws {
        var value = value
        guard zmq_setsockopt(raw, option, &value, MemoryLayout<Int32>.size) == 0 else { throw StreamError.zeroMQ("zmq_setsockopt") }
    }

    func subscribe(_ prefix: String) throws {
        let bytes = Array(prefix.utf8)
        guard zmq_setsockopt(raw, ZMQ_SUBSCRIBE, bytes, bytes.count) == 0 else { throw StreamError.zeroMQ("zmq_setsockopt(SUBSCRIBE)") }
    }

    func bind(_ address: String) throws {
        guard zmq_bind(raw, address) == 0 else { throw StreamError.zeroMQ("zmq_bind \(address)") }
    }

    func connect(_ address: String) throws {
        guard zmq_connect(raw, address) == 0 else { throw StreamError.zeroMQ("zmq_connect \(address)") }
    }

    /// Sends a two-frame message without blocking; false when it would block (the high-water mark).
    func sendTwoFrames(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool {
        guard zmq_send(raw, first.baseAddress, first.count, ZMQ_DONTWAIT | ZMQ_SNDMORE) >= 0 else { return false }
        return zmq_send(raw, second.baseAddress, second.count, ZMQ_DONTWAIT) >= 0
    }

    deinit {
        zmq_close(raw)
    }
}
