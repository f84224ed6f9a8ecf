import GatewaySupport
import MCPJSON

/// Ninth step, the end of the path: runs the tool on this worker thread and answers with its
/// result. A tool's failure is an `isError` result the model can read; a claims challenge
/// from the token broker becomes the 401 that sends the client back to Entra.
public struct CallTool: Responder {
    let server: ServerIdentity
    let challenges: Challenges
    let reply: MCPReply

    init(server: ServerIdentity, challenges: Challenges, reply: MCPReply) {
        self.server = server
        self.challenges = challenges
        self.reply = reply
    }

    public init(server: ServerIdentity, challenges: Challenges) {
        self.init(server: server, challenges: challenges, reply: MCPReply(server: server, listTTLMilliseconds: 0))
    }

    public func respond(_ exchange: inout Exchange) -> HTTPResponse {
        guard let accepted = exchange.message, let caller = exchange.caller, let call = exchange.toolCall else {
            // Only a path wired without dispatch gets here.
            return HTTPResponse.error(500, "internal_error", "The request reached no tool")
        }
        let context = ToolContext(caller: caller, requestId: exchange.requestId,
                                  protocolVersion: accepted.protocolVersion, era: accepted.era, server: server)
        var result: ToolResult
        do {
            result = try call.entry.tool.call(arguments: call.arguments, context: context)
        } catch let e as ToolError {
            result = .failure(e.description)
            result.upstreamStatus = e.upstreamStatus
        } catch let c as ClaimsChallenge {
            exchange.verdict.deny("claims challenge")
            return challenges.claimsChallenge(c, id: accepted.message.id)
        } catch {
            Log.shared.error("tool failed", ["tool": .string(call.name), "request_id": .string(exchange.requestId),
                                             "error": .string(String(describing: error))])
            result = .failure("The tool \(call.name) failed unexpectedly (request \(exchange.requestId)).")
        }
        if result.isError { exchange.verdict.reason = "tool error" }
        exchange.verdict.upstreamStatus = result.upstreamStatus
        return reply.result(result, to: accepted)
    }
}
