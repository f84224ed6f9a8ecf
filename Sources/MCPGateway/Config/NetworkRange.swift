import FoundationEssentials
import Glibc

/// An IPv4 or IPv6 network in CIDR form ("10.0.0.0/8", "::1/128", or a bare address).
/// Used to decide which peers (REMOTE_ADDR as the web server saw it) may assert things.
public struct NetworkRange: Sendable, Equatable, CustomStringConvertible {
    let bytes: [UInt8]
    let prefixLength: Int
    public let description: String

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = NetworkRange.parseAddress(String(parts[0])) else { return nil }
        let maxBits = address.count * 8
        var length = maxBits
        if parts.count == 2 {
            guard let n = Int(parts[1]), n >= 0, n <= maxBits, parts[1].allSatisfy(\.isASCII) else { return nil }
            length = n
        }
        bytes = NetworkRange.masked(address, length)
        prefixLength = length
        description = text
    }

    public func contains(_ addressText: String) -> Bool {
        guard let address = NetworkRange.parseAddress(addressText) else { return false }
        return contains(address: address)
    }

    /// Whether any of `ranges` holds the address; the text is parsed once for all of them.
    public static func any(_ ranges: [NetworkRange], contains addressText: String) -> Bool {
        guard !ranges.isEmpty, let address = parseAddress(addressText) else { return false }
        return ranges.contains { $0.contains(address: address) }
    }

    func contains(address parsed: [UInt8]) -> Bool {
        var address = parsed
        // An IPv4 peer reported in IPv6-mapped form (::ffff:a.b.c.d) matches IPv4 ranges.
        if bytes.count == 4, address.count == 16, address[0..<10].allSatisfy({ $0 == 0 }), address[10] == 0xFF, address[11] == 0xFF {
            address = Array(address[12...])
        }
        guard address.count == bytes.count else { return false }
        return NetworkRange.masked(address, prefixLength) == bytes
    }

    static func parseAddress(_ s: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, s, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, s, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    static func masked(_ address: [UInt8], _ length: Int) -> [UInt8] {
        address.enumerated().map { i, b in
            let bits = max(0, min(8, length - i * 8))
            return bits == 8 ? b : b & UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
        }
    }

    public static let loopback = [NetworkRange("127.0.0.0/8")!, NetworkRange("::1/128")!]
}
