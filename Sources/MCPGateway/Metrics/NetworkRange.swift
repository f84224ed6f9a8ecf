import Foundation

/// An IPv4 or IPv6 network in CIDR form ("127.0.0.0/8", "::1/128", "10.1.2.3").
public struct NetworkRange: Equatable, Sendable, CustomStringConvertible {
    let address: [UInt8]
    let prefix: Int
    public let description: String

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let bytes = NetworkRange.parseAddress(String(parts[0])) else { return nil }
        let bits = bytes.count * 8
        if parts.count == 2 {
            guard let p = Int(parts[1]), (0...bits).contains(p), !parts[1].hasPrefix("+") else { return nil }
            prefix = p
        } else {
            prefix = bits
        }
        address = bytes
        description = text
    }

    public func contains(_ text: String) -> Bool {
        guard var other = NetworkRange.parseAddress(text) else { return false }
        // IPv4-mapped IPv6 (::ffff:a.b.c.d) as the web server may report it.
        if other.count == 16, address.count == 4, other[0..<10].allSatisfy({ $0 == 0 }), other[10] == 0xFF, other[11] == 0xFF {
            other = Array(other[12...])
        }
        guard other.count == address.count else { return false }
        var left = prefix
        for i in 0..<address.count where left > 0 {
            let mask: UInt8 = left >= 8 ? 0xFF : ~(0xFF >> UInt8(left))
            if address[i] & mask != other[i] & mask { return false }
            left -= 8
        }
        return true
    }

    static func parseAddress(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}
