public import NIOCore

#if canImport(Glibc)
import Glibc
#endif

extension SocketAddress {
    /// The address of an IP literal and a port that came from outside (a datagram, a request, a stored
    /// registration), or nil when either is not valid. `SocketAddress(ipAddress:port:)` traps on a port
    /// outside 0...65535, so input never reaches it unchecked. `localhost` is taken as 127.0.0.1, as
    /// devices register it; no other name is resolved.
    public static func validated(host: some StringProtocol, port: Int) -> SocketAddress? {
        guard (0...65535).contains(port), !host.isEmpty else { return nil }
        return try? SocketAddress(ipAddress: host == "localhost" ? "127.0.0.1" : String(host), port: port)
    }

    /// `ip:port`, with an IPv6 address in brackets (`[::1]:9000`), as the UDP stream's `src` and the
    /// cluster's announcements write it; nil when it is not that shape.
    public static func validated(hostPort text: some StringProtocol) -> SocketAddress? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
        var host = text[..<colon]
        if host.first == "[", host.last == "]" { host = host.dropFirst().dropLast() }
        return validated(host: host, port: port)
    }
}

extension SocketAddress {
    /// The IP address as text, with an IPv6 scope (`fe80::1%lo`) when it has one, which `ipAddress`
    /// leaves out: what crosses the change streams must read back as the same address.
    public var ipAddressWithScope: String? {
        guard case .v6 = self else { return ipAddress }
        return withSockAddr { pointer, length -> String? in
            var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            guard getnameinfo(pointer, socklen_t(length), &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 else { return nil }
            return String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        } ?? ipAddress
    }
}

/// An address only this machine reaches: `localhost`, 127.0.0.0/8 or ::1.
public func isLoopback(_ host: String) -> Bool {
    host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
}

/// An address that means "every interface": others cannot reach a process at it.
public func isWildcard(_ host: String) -> Bool {
    host == "0.0.0.0" || host == "::" || host == "[::]"
}
