/// The protocol revisions this server speaks, by era.
public enum ProtocolVersion {
    /// Stateless revisions: per-request `_meta`, `server/discover`, mirrored headers.
    public static let modern: [String] = ["2026-07-28"]
    /// Handshake revisions: `initialize` first. Newest first.
    public static let legacy: [String] = ["2025-11-25", "2025-06-18", "2025-03-26"]
    /// What a legacy request without `MCP-Protocol-Version` is taken to be (transport spec).
    public static let legacyDefault = "2025-03-26"

    public static var all: [String] { modern + legacy }

    public static func isModern(_ v: String) -> Bool { modern.contains(v) }
    public static func isLegacy(_ v: String) -> Bool { legacy.contains(v) }
}

/// Which set of rules a request is served under.
public enum ProtocolEra: String, Sendable {
    case legacy
    case modern
}

/// The `_meta` keys of the 2026-07-28 revision.
enum MetaKey {
    static let protocolVersion = "io.modelcontextprotocol/protocolVersion"
    static let clientCapabilities = "io.modelcontextprotocol/clientCapabilities"
    static let serverInfo = "io.modelcontextprotocol/serverInfo"
}
