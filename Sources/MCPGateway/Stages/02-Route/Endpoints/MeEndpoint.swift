import FoundationEssentials
import GatewayStore
import GatewaySupport
import MCPJSON

/// `GET /me`: the caller as the server sees it (identity facts only, never the token). A
/// blocked caller is refused here as on the MCP endpoint.
public struct MeEndpoint: Sendable {
    static let path = "/me"
    let authenticator: Authenticator
    let challenges: Challenges
    let blocks: OperatorBlocks

    public init(authenticator: Authenticator, challenges: Challenges, blocks: any BlockList, metrics: GatewayMetrics) {
        self.authenticator = authenticator
        self.challenges = challenges
        self.blocks = OperatorBlocks(blocks: blocks, metrics: metrics)
    }

    func respond(to request: HTTPRequest, requestId: String) -> HTTPResponse {
        guard request.method == "GET" else {
            return HTTPResponse.error(405, "method_not_allowed", "Use GET", headers: [("Allow", "GET")])
        }
        switch authenticator.authenticate(request) {
        case .failure(let f): return challenges.refusal(f)
        case .success(let caller):
            // The authenticator always leaves a verified principal; without one, nothing passes.
            guard let p = caller.principal else {
                return HTTPResponse.error(500, "internal_error", "The request was answered without a verified caller")
            }
            do {
                if let block = try blocks.activeBlock(for: p, now: Date().timeIntervalSince1970, requestId: requestId, method: "GET /me") {
                    return HTTPResponse.error(403, "blocked", OperatorBlocks.refusalMessage + " (\(block.kind.rawValue))")
                }
            } catch {
                Log.shared.error("shared store unavailable; refusing", ["request_id": .string(requestId), "error": .string("\(error)")])
                return HTTPResponse.error(503, "store_unavailable", "The server's shared store is unavailable; try again shortly",
                                          headers: [("Retry-After", "5")])
            }
            return HTTPResponse.json(200, .object(caller.identity))
        }
    }
}
