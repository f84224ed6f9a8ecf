import GatewaySupport
import MCPJSON

/// Eighth stage: may this caller use this tool? The tool's permission against what the
/// caller's roles and scopes grant (a refusal is rendered by `Challenges`), then its
/// arguments against the tool's input schema.
public struct AuthorizeTool: Stage {
    let challenges: Challenges
    let reply: MCPReply

    init(challenges: Challenges, reply: MCPReply) {
        self.challenges = challenges
        self.reply = reply
    }

    public init(challenges: Challenges, server: ServerIdentity) {
        self.init(challenges: challenges, reply: MCPReply(server: server, listTTLMilliseconds: 0))
    }

    public func handle(_ exchange: inout Exchange, next: Next) -> HTTPResponse {
        guard let accepted = exchange.message, let caller = exchange.caller, let call = exchange.toolCall else { return next(&exchange) }
        let definition = call.entry.definition
        if let permission = definition.permission, !caller.may(permission) {
            exchange.verdict.deny("missing permission \(permission)")
            Log.shared.info("tool call denied", ["request_id": .string(exchange.requestId), "caller": .string(caller.key),
                                                 "tool": .string(call.name), "permission": .string(permission)])
            return challenges.denial(permission: permission, caller: caller.principal, id: accepted.message.id, tool: call.name)
        }
        var arguments = JSONObject()
        if let a = accepted.message.params["arguments"], !a.isNull {
            guard case .object(let o) = a else {
                return reply.failure(.invalidParams("arguments must be an object"), to: accepted, exchange: &exchange)
            }
            arguments = o
        }
        if let problem = call.entry.validator.validate(.object(arguments)) {
            return reply.failure(.invalidParams("Invalid arguments for \(call.name): \(problem)"), to: accepted, exchange: &exchange)
        }
        exchange.toolCall?.arguments = arguments
        return next(&exchange)
    }
}
