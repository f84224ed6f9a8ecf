import GatewayStore
import EntraAuth
import FoundationEssentials
import GatewaySupport
import MCPJSON

/// Sixth stage: legacy-era `Mcp-Session-Id` (when `sessions.enabled`). Sessions are minted
/// on `initialize`, bound to the caller, shared by every process through the store, and
/// never required: a request without the header is served statelessly. A DELETE ends one.
public struct Sessions: Stage {
    let store: any MCPSessionStore
    let enabled: Bool
    let idleSeconds: Double

    public init(store: any MCPSessionStore, enabled: Bool, idleMinutes: Int) {
        self.store = store
        self.enabled = enabled
        self.idleSeconds = Double(idleMinutes) * 60
    }

    /// Who a session belongs to: tenant, user and client app.
    static func owner(_ p: Principal) -> String { "\(p.tenantId)/\(p.objectId)/\(p.clientAppId ?? "")" }

    public func handle(_ exchange: inout Exchange, next: Next) -> HTTPResponse {
        if exchange.endsSession { return end(&exchange) }
        guard enabled, let accepted = exchange.message, accepted.era == .legacy else { return next(&exchange) }
        guard let p = exchange.principal else { return Admission.noCaller(&exchange) }
        let message = accepted.message
        let owner = Sessions.owner(p)
        if message.method != "initialize", let sid = exchange.request.headers["mcp-session-id"] {
            // Unknown, expired and someone else's sessions all look the same: not found.
            let known = (try? store.useSession(id: sid, principal: owner, now: Date().timeIntervalSince1970, idle: idleSeconds)) ?? false
            if !known {
                exchange.verdict.deny("session not found")
                return HTTPResponse.json(404, JSONRPCMessage.errorEnvelope(id: message.id, error: RPCError(
                    RPCErrorCode.invalidRequest, "Session not found: initialize again without Mcp-Session-Id")))
            }
        }
        var response = next(&exchange)
        if message.method == "initialize", response.status == 200 {
            let sid = Hex.random(words: 4)  // 256 random bits: session ids must not be guessable
            do {
                try store.createSession(id: sid, principal: owner, now: Date().timeIntervalSince1970)
                response.headers.append(("Mcp-Session-Id", sid))
            } catch {
                Log.shared.warning("cannot store a session; answering without one", ["request_id": .string(exchange.requestId)])
            }
        }
        return response
    }

    /// DELETE with an Mcp-Session-Id ends the caller's own session.
    private func end(_ exchange: inout Exchange) -> HTTPResponse {
        guard let p = exchange.principal else { return Admission.noCaller(&exchange) }
        guard let sid = exchange.request.headers["mcp-session-id"] else {
            exchange.verdict.deny("no session id")
            return HTTPResponse.json(400, JSONRPCMessage.errorEnvelope(id: nil, error: RPCError(RPCErrorCode.invalidRequest,
                "DELETE ends a session: send its Mcp-Session-Id")))
        }
        let ended = (try? store.endSession(id: sid, principal: Sessions.owner(p))) ?? false
        guard ended else {
            exchange.verdict.deny("session not found")
            return HTTPResponse.json(404, JSONRPCMessage.errorEnvelope(id: nil, error: RPCError(RPCErrorCode.invalidRequest, "Session not found")))
        }
        exchange.verdict = Verdict(decision: .allowed)
        return HTTPResponse(status: 204)
    }
}
