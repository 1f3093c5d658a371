import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CLOCK_MONOTONIC in nanoseconds: the clock of the timestamps the benchmark puts in its events.
package func monotonicNanoseconds() -> UInt64 {
    NIODeadline.now().uptimeNanoseconds
}

/// CLOCK_REALTIME in nanoseconds: the clock of the kernel's arrival stamps.
package func realtimeNanoseconds() -> UInt64 {
    // timespecs laid out by hand, (seconds, nanoseconds) as on 64-bit Linux: NIO's C module declares
    // timespec too, and the compiler will not pick Glibc's members without importing it.
    var now = (0, 0)
    withUnsafeMutablePointer(to: &now) { pointer in
        pointer.withMemoryRebound(to: timespec.self, capacity: 1) { _ = clock_gettime(CLOCK_REALTIME, $0) }
    }
    return UInt64(now.0) * 1_000_000_000 + UInt64(now.1)
}

package func sleepUntil(nanoseconds deadline: UInt64) {
    var target = (Int(deadline / 1_000_000_000), Int(deadline % 1_000_000_000))
    withUnsafeMutablePointer(to: &target) { pointer in
        pointer.withMemoryRebound(to: timespec.self, capacity: 1) { time in
            while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, time, nil) == EINTR {}
        }
    }
}

/// Why a benchmark could not run.
public enum BenchError: Error, CustomStringConvertible {
    case system(String, Int32)
    case server(String)

    public var description: String {
        switch self {
        case .system(let call, let code): "\(call) failed: \(String(cString: strerror(code)))"
        case .server(let message): message
        }
    }
}
