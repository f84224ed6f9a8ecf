/// The version reported by `/health`, `serverInfo` and `mcp-fcgi --version`.
public enum GatewayVersion {
    public static let string = "0.1.0"
    public static let name = "mcp-fcgi"
}
