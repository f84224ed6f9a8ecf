import MCPJSON

/// The `metrics` section: who may read `/metrics`.
public struct MetricsSettings: Sendable {
    public var enabled = true
    /// Checked against REMOTE_ADDR; loopback only unless widened.
    public var allowedNetworks: [NetworkRange] = NetworkRange.loopback

    public init() {}

    public func allows(_ remoteAddress: String?) -> Bool {
        guard let remoteAddress else { return false }
        return NetworkRange.any(allowedNetworks, contains: remoteAddress)
    }

    static func parse(_ s: ConfigSection) -> MetricsSettings {
        var m = MetricsSettings()
        m.enabled = s.bool("enabled", default: true)
        if let networks = s.strings("allowed_networks") {
            m.allowedNetworks = []
            for (i, text) in networks.enumerated() {
                if let range = NetworkRange(text) { m.allowedNetworks.append(range) } else {
                    s.fail("allowed_networks[\(i)]", "'\(text)' is not an IP network: write it as 10.0.0.0/8, 192.0.2.7 or fd00::/8")
                }
            }
        }
        return m
    }
}
