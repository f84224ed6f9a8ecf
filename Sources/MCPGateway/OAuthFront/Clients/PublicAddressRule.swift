/// Whether an address is on the public internet, where a client's metadata document may be
/// fetched from: not loopback, private (RFC 1918, fc00::/7), link-local, CGNAT (100.64.0.0/10),
/// multicast, unspecified, documentation, benchmarking or any other special-use block of the
/// IANA registries. An address embedded in IPv6 (mapped, NAT64) is judged as the IPv4 it names.
enum PublicAddressRule {
    static let specialIPv4 = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
        "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    ].map { NetworkRange($0)! }

    /// Inside global unicast (2000::/3), the blocks that are not the public internet.
    static let specialIPv6 = [
        "2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20",
    ].map { NetworkRange($0)! }
    static let globalUnicast = NetworkRange("2000::/3")!
    /// IPv4 in IPv6: mapped (::ffff:0:0/96) and the NAT64 well-known prefix (64:ff9b::/96).
    static let embeddingIPv4 = [NetworkRange("::ffff:0:0/96")!, NetworkRange("64:ff9b::/96")!]

    static func isPublic(_ text: String) -> Bool {
        guard let address = NetworkRange.parseAddress(text) else { return false }
        if address.count == 4 { return !specialIPv4.contains { $0.contains(address: address) } }
        if embeddingIPv4.contains(where: { $0.contains(address: address) }) {
            let v4 = Array(address[12...])
            return !specialIPv4.contains { $0.contains(address: v4) }
        }
        return globalUnicast.contains(address: address) && !specialIPv6.contains { $0.contains(address: address) }
    }
}
