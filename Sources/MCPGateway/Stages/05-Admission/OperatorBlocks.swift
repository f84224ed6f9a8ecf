import GatewayStore
import EntraAuth
import GatewaySupport

/// The operator's blocks (`mcp-fcgi block`), checked wherever a verified caller is answered:
/// the MCP endpoint (in `Admission`) and `/me`, which answers before the stages.
struct OperatorBlocks: Sendable {
    let blocks: any BlockList
    let metrics: GatewayMetrics

    /// The block in force for `principal` (its user, tenant or client app), counted and logged;
    /// nil when there is none. Throws when the store cannot say: callers refuse then.
    func activeBlock(for p: Principal, now: Double, requestId: String, method: String) throws -> Block? {
        // Ids are stored as `mcp-fcgi block` canonicalises them; GUIDs compare case-insensitively.
        let found = try blocks.activeBlock(now: Int64(now)) {
            var keys: [(Block.Kind, String)] = [(.user, Principal.canonicalUserID(p.objectId)), (.tenant, p.tenantId.lowercased())]
            if let app = p.clientAppId { keys.append((.clientApp, app.lowercased())) }
            return keys
        }
        guard let block = found else { return nil }
        metrics.recordBlocked()
        Log.shared.warning("request from a blocked principal refused", ["request_id": .string(requestId),
            "block": .string(block.kind.rawValue), "id": .string(block.id), "method": .string(method)])
        return block
    }

    static let refusalMessage = "Access has been blocked by the operator of this server"
}
