public import CDatagramBatches

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Buffers for one `recvmmsg` of up to `count` datagrams, allocated once and used for every read. Kept out
/// of a Swift array on purpose: passing an array's elements to C as `&slots` from a closure's `inout`
/// parameter copied its buffer on every read, and the relay grew by 25 MB a second.
public final class DatagramSlots {
    public let slotSize: Int
    public let slots: UnsafeMutableBufferPointer<aesel_received_datagram>
    private let storage: UnsafeMutableRawBufferPointer

    public init(count: Int = 64, slotSize: Int = 2048) {
        self.slotSize = slotSize
        storage = .allocate(byteCount: count * slotSize, alignment: 8)
        slots = .allocate(capacity: count)
        for index in 0..<count {
            slots.initializeElement(
                at: index,
                to: aesel_received_datagram(buffer: storage.baseAddress! + index * slotSize, capacity: slotSize, length: 0, source: sockaddr_storage(), arrival: 0))
        }
    }

    deinit {
        slots.deallocate()
        storage.deallocate()
    }

    public var count: Int { slots.count }

    /// Reads what waits on `descriptor`: how many slots it filled. Without `waiting`, 0 when none waited;
    /// with it, it blocks until one arrives, then takes what else waits with it.
    public func receive(from descriptor: Int32, waiting: Bool = false) -> Int {
        Int(max(0, aesel_receive_datagrams(descriptor, slots.baseAddress, UInt32(slots.count), waiting ? 1 : 0)))
    }

    /// The datagram in slot `index`, cut to the slot's size.
    public func datagram(_ index: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: slots[index].buffer, count: min(slots[index].length, slotSize))
    }
}
