import GatewaySupport
import MCPJSON

/// `GET /me`: the caller as the server sees it (identity facts only, never the token).
public struct MeEndpoint: Sendable {
    static let path = "/me"
    let authenticator: Authenticator
    let challenges: Challenges

    public init(authenticator: Authenticator, challenges: Challenges) {
        self.authenticator = authenticator
        self.challenges = challenges
    }

    func respond(to request: HTTPRequest) -> HTTPResponse {
        guard request.method == "GET" else {
            return HTTPResponse.error(405, "method_not_allowed", "Use GET", headers: [("Allow", "GET")])
        }
        switch authenticator.authenticate(request) {
        case .failure(let f): return challenges.refusal(f)
        case .success(let caller): return HTTPResponse.json(200, .object(caller.identity))
        }
    }
}
