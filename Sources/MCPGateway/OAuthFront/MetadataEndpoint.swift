import GatewayStore
import GatewaySupport
import MCPJSON

/// RFC 8414 authorization server metadata, at every well-known path MCP clients try.
struct MetadataEndpoint: FrontEndpoint {
    let front: FrontContext
    let document: JSONValue

    init(front: FrontContext) {
        self.front = front
        let issuer = front.issuer, base = front.oauth.endpointBase
        let methods: JSONValue = ["none", "client_secret_basic", "client_secret_post"]
        document = [
            "issuer": .string(issuer),
            "authorization_endpoint": .string(base + "/oauth/authorize"),
            "token_endpoint": .string(base + "/oauth/token"),
            "registration_endpoint": .string(base + "/oauth/register"),
            "revocation_endpoint": .string(base + "/oauth/revoke"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": methods,
            "revocation_endpoint_auth_methods_supported": methods,
            "client_id_metadata_document_supported": true,
            "authorization_response_iss_parameter_supported": true,
            "scopes_supported": JSONValue(front.oauth.scopes),
        ]
    }

    func respond(to request: HTTPRequest, requestId: String) -> HTTPResponse {
        switch request.method {
        case "GET", "HEAD": return HTTPResponse.json(200, document, headers: FrontContext.cors)
        case "OPTIONS": return FrontContext.preflight(methods: "GET, OPTIONS")
        default: return HTTPResponse.error(405, "method_not_allowed", "Use GET", headers: [("Allow", "GET, OPTIONS")])
        }
    }
}

/// RFC 7591 dynamic registration, rate-limited per source address in the shared store.
struct RegistrationEndpoint: FrontEndpoint {
    let front: FrontContext

    func respond(to request: HTTPRequest, requestId: String) -> HTTPResponse {
        if let refusal = FrontContext.postOnly(request, endpoint: "registration") { return refusal }
        let type = request.headers["content-type"]?.split(separator: ";").first.map { $0.trimmingASCIISpaces().lowercased() }
        guard type == "application/json" else {
            return FrontContext.oauthError(415, "invalid_client_metadata", "the registration must be an application/json body")
        }
        let perHour = Double(front.oauth.registrationsPerHour)
        let source = request.remoteAddress ?? "unknown"
        do {
            let bucket = RateBucket(key: "oauth-register:\(front.config.instanceName):\(source)", perMinute: perHour / 60, burst: perHour)
            if let wait = try front.limiter.take([bucket], now: front.now) {
                let seconds = max(1, Int(wait.rounded(.up)))
                Log.shared.info("client registration rate limit reached", ["request_id": .string(requestId), "retry_after": .integer(seconds)])
                return FrontContext.oauthError(429, "invalid_client_metadata", "too many registrations from this address: retry in \(seconds) s",
                                               headers: [("Retry-After", String(seconds))])
            }
        } catch {
            Log.shared.error("shared store unavailable; refusing a registration", ["request_id": .string(requestId)])
            return FrontContext.oauthError(503, "temporarily_unavailable", "the server's shared store is unavailable; try again shortly",
                                           headers: [("Retry-After", "5")])
        }
        let (status, body) = front.registration.register(body: request.body)
        if status == 201 {
            Log.shared.info("client registered", ["request_id": .string(requestId), "client_id": body["client_id"] ?? .null])
        }
        return HTTPResponse.json(status, body, headers: FrontContext.noStore + FrontContext.cors)
    }
}
