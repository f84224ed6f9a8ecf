import GatewaySupport

/// Fourth stage: bearer token (or trusted proxy assertion) → `exchange.caller`, or the
/// 401/403/503 that tells the client how to get a good token.
public struct Authenticate: Stage {
    let authenticator: Authenticator
    let challenges: Challenges

    public init(authenticator: Authenticator, challenges: Challenges) {
        self.authenticator = authenticator
        self.challenges = challenges
    }

    public func handle(_ exchange: inout Exchange, next: Next) -> HTTPResponse {
        switch authenticator.authenticate(exchange.request) {
        case .failure(let failure):
            exchange.verdict.deny(failure.reason)
            let response = challenges.refusal(failure)
            Log.shared.info("request refused", ["request_id": .string(exchange.requestId), "status": .integer(response.status),
                                                "reason": .string(failure.reason),
                                                "method": .string(exchange.message?.message.method ?? "DELETE session")])
            return response
        case .success(let caller):
            exchange.caller = caller
            return next(&exchange)
        }
    }
}
