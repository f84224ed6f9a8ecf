import FoundationEssentials
import Glibc

/// Names to addresses, so the metadata-document fetcher can check where a client id URL leads
/// before connecting, and pin the connection there.
protocol HostResolver: Sendable {
    /// Every IPv4 and IPv6 address of `host` (a name or an address literal), as text.
    func addresses(of host: String) throws -> [String]
}

struct HostResolutionError: Error, CustomStringConvertible {
    let description: String
}

/// The system resolver (getaddrinfo: /etc/hosts, DNS, as the rest of the host resolves).
struct SystemHostResolver: HostResolver {
    func addresses(of host: String) throws -> [String] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0, let first = list else {
            throw HostResolutionError(description: "cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(first) }
        var out: [String] = []
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let e = entry {
            if let address = Self.text(of: e.pointee), !out.contains(address) { out.append(address) }
            entry = e.pointee.ai_next
        }
        return out
    }

    private static func text(of info: addrinfo) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch info.ai_family {
        case AF_INET:
            guard var a = info.ai_addr?.withMemoryRebound(to: sockaddr_in.self, capacity: 1, { $0.pointee.sin_addr }),
                  inet_ntop(AF_INET, &a, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        case AF_INET6:
            guard var a = info.ai_addr?.withMemoryRebound(to: sockaddr_in6.self, capacity: 1, { $0.pointee.sin6_addr }),
                  inet_ntop(AF_INET6, &a, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        default:
            return nil
        }
        return String(cString: buffer)
    }
}
