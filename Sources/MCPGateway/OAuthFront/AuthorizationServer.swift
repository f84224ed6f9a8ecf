import EntraAuth
import FoundationEssentials
import GatewayStore
import GatewaySupport
import MCPJSON
import UpstreamHTTP

/// The instance's OAuth 2.1 authorization server in front of Entra ID (`oauth` section): its
/// routes, and what every endpoint shares. Each endpoint is a small type with one job
/// (`MetadataEndpoint`, `RegistrationEndpoint`, `AuthorizeEndpoint`, `ConsentEndpoint`,
/// `CallbackEndpoint`, `TokenEndpoint`, `RevocationEndpoint`); their state is in the shared store.
public final class AuthorizationServer: Sendable {
    let front: FrontContext
    let routes: [String: any FrontEndpoint]

    init(front: FrontContext) {
        self.front = front
        let base = front.oauth.basePath
        var routes: [String: any FrontEndpoint] = [:]
        let metadata = MetadataEndpoint(front: front)
        for path in ["/.well-known/oauth-authorization-server" + base, "/.well-known/openid-configuration" + base,
                     base + "/.well-known/openid-configuration"] {
            routes[path] = metadata
        }
        routes[base + "/oauth/register"] = RegistrationEndpoint(front: front)
        routes[base + "/oauth/authorize"] = AuthorizeEndpoint(front: front)
        routes[base + "/oauth/consent"] = ConsentEndpoint(front: front)
        routes[base + "/oauth/callback"] = CallbackEndpoint(front: front)
        routes[base + "/oauth/token"] = TokenEndpoint(front: front)
        routes[base + "/oauth/revoke"] = RevocationEndpoint(front: front)
        self.routes = routes
    }

    /// The paths this server answers (the instance router sends them here).
    public var paths: [String] { routes.keys.sorted() }

    func respond(_ exchange: inout Exchange) -> HTTPResponse? {
        guard let endpoint = routes[exchange.request.path] else { return nil }
        // Expired sign-ins, codes and tokens go without a scheduler: about one request in a hundred prunes.
        if (exchange.draw >> 32) % 100 == 0 { try? front.store.pruneOAuth(now: front.now) }
        return endpoint.respond(to: exchange.request, requestId: exchange.requestId)
    }
}

/// A step of an endpoint that either goes on with a value or has its answer already.
enum FrontStep<Value> {
    case proceed(Value)
    case answer(HTTPResponse)
}

/// One endpoint of the authorization server.
protocol FrontEndpoint: Sendable {
    func respond(to request: HTTPRequest, requestId: String) -> HTTPResponse
}

/// What the endpoints share: configuration, the store, the client directory, Entra, the
/// verifier that decides whether a signed-in user may use this server, and the front's keys.
struct FrontContext: Sendable {
    let config: GatewayConfig
    let oauth: OAuthConfig
    let store: OAuthStore
    let limiter: RateLimiter
    let directory: ClientDirectory
    let registration: ClientRegistration
    let signIn: EntraSignIn
    let verifier: TokenVerifier
    let secrets: FrontSecrets
    let clock: @Sendable () -> Double

    var issuer: String { oauth.issuer }
    var callbackURL: String { oauth.endpointBase + "/oauth/callback" }
    var resource: String { config.server.publicURL }
    var now: Double { clock() }

    /// What we ask Entra for beyond the API scopes: a refresh token and an id token.
    static let signInScopes = ["offline_access", "openid"]

    /// The client's redirect URI with the authorization response (RFC 6749 §4.1.2), always with
    /// our `iss` (RFC 9207).
    func redirect(to redirectURI: String, _ parameters: [(String, String)]) -> HTTPResponse {
        let separator = redirectURI.contains("?") ? "&" : "?"
        let location = redirectURI + separator + URLEncoding.form(parameters + [("iss", issuer)])
        return HTTPResponse(status: 302, headers: [("Location", location)])
    }

    /// An error sent back to a client whose redirect URI has been checked.
    func redirectError(to redirectURI: String, state: String?, _ error: String, _ description: String) -> HTTPResponse {
        var parameters = [("error", error), ("error_description", description)]
        if let state { parameters.append(("state", state)) }
        return redirect(to: redirectURI, parameters)
    }

    /// RFC 6749 §5.2 error answer of the token and revocation endpoints.
    static func oauthError(_ status: Int, _ error: String, _ description: String, headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse.json(status, ["error": .string(error), "error_description": .string(description)],
                          headers: headers + noStore + cors)
    }

    /// RFC 6749 §5.1 also asks for `Pragma: no-cache`; `Cache-Control: no-store` is on every
    /// answer already (the gateway adds it), and a second copy would read `no-store, no-store`.
    static let noStore: [(String, String)] = [("Pragma", "no-cache")]
    /// Browser-based clients (the MCP Inspector) call metadata, registration, token and revocation
    /// from script; never the authorize endpoint (RFC 9700 §2.6).
    static let cors: [(String, String)] = [("Access-Control-Allow-Origin", "*")]

    static func preflight(methods: String) -> HTTPResponse {
        HTTPResponse(status: 204, headers: cors + [("Access-Control-Allow-Methods", methods),
                                                   ("Access-Control-Allow-Headers", "Authorization, Content-Type, MCP-Protocol-Version"),
                                                   ("Access-Control-Max-Age", "86400")])
    }

    /// nil for a POST; the CORS preflight's answer for OPTIONS; 405 for anything else.
    static func postOnly(_ request: HTTPRequest, endpoint: String) -> HTTPResponse? {
        switch request.method {
        case "POST": return nil
        case "OPTIONS": return preflight(methods: "POST, OPTIONS")
        default: return oauthError(405, "invalid_request", "the \(endpoint) endpoint takes POST", headers: [("Allow", "POST")])
        }
    }

    /// The query of a GET a browser makes (authorize, callback), or the page that says why not.
    static func browserQuery(_ request: HTTPRequest, expects what: String) -> FrontStep<FormBody> {
        guard request.method == "GET" else {
            return .answer(ConsentPage.error(405, title: "Method not allowed", detail: "\(what) takes GET."))
        }
        do { return .proceed(try FormBody(Substring(request.query))) } catch {
            return .answer(ConsentPage.error(400, title: "Malformed sign-in request", detail: "\(error)"))
        }
    }

    /// A form body, or why not (415 for another media type, 400 for a malformed body).
    static func form(_ request: HTTPRequest) -> FrontStep<FormBody> {
        let type = request.headers["content-type"]?.split(separator: ";").first.map { $0.trimmingASCIISpaces().lowercased() }
        guard type == "application/x-www-form-urlencoded" else {
            return .answer(oauthError(415, "invalid_request", "the body must be application/x-www-form-urlencoded"))
        }
        do { return .proceed(try FormBody(body: request.body)) } catch {
            return .answer(oauthError(400, "invalid_request", "\(error)"))
        }
    }
}

extension AuthorizationServer {
    /// The front an instance's `oauth` section describes, sharing the instance's verifier and stores.
    static func make(config: GatewayConfig, oauth: OAuthConfig, stores: StateStores, verifier: TokenVerifier,
                     metrics: GatewayMetrics) throws -> AuthorizationServer {
        guard let credentialConfig = config.credential else {
            throw ServerError("oauth needs the credential section: the gateway signs users in as its own confidential client")
        }
        var entraOptions = CurlHTTPClientOptions.gateway
        entraOptions.totalTimeoutSeconds = Double(credentialConfig.timeoutSeconds)
        entraOptions.caBundlePath = credentialConfig.caBundle ?? config.auth.caBundle
        entraOptions.allowInsecureHTTPForTesting = credentialConfig.allowInsecureHTTPForTesting
        entraOptions.maxRetries = 0
        let signIn = try EntraSignIn(clientId: credentialConfig.clientId, authority: credentialConfig.authority ?? config.auth.authority,
                                     tenant: oauth.entraTenant, credential: try ClientCredential.load(credentialConfig),
                                     http: MeteredHTTPClient.wrap(CurlHTTPClient(options: entraOptions), upstream: "entra_token", metrics: metrics))
        // Client ID Metadata Documents: TLS verified, never a redirect, bounded time and size.
        let documents = MeteredHTTPClient.wrap(ClientMetadataDocumentFetcher.transport(for: oauth), upstream: "client_metadata", metrics: metrics)
        let front = FrontContext(config: config, oauth: oauth, store: stores.oauth, limiter: stores.rateLimiter,
                                 directory: ClientDirectory(config: oauth, store: stores.oauth, http: documents),
                                 registration: ClientRegistration(config: oauth, store: stores.oauth),
                                 signIn: signIn, verifier: verifier, secrets: try FrontSecrets(stateDirectory: config.stateDirectory),
                                 clock: { Date().timeIntervalSince1970 })
        return AuthorizationServer(front: front)
    }
}
