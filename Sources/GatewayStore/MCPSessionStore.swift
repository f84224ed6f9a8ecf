/// The `Mcp-Session-Id` sessions of the older MCP protocol versions, each owned by one principal.
public protocol MCPSessionStore: AnyObject, Sendable {
    func createSession(id: String, principal: String, now: Double) throws
    /// True when the session exists, belongs to `principal` and was used within `idle`
    /// seconds; it is then marked used. Anything else is "not found" to the caller.
    func useSession(id: String, principal: String, now: Double, idle: Double) throws -> Bool
    func endSession(id: String, principal: String) throws -> Bool
}
