import EntraAuth
import FoundationEssentials
import GatewaySupport
import MCPJSON

/// The gateway as a confidential web client of Entra ID for interactive sign-in
/// (authorization code flow with PKCE): the authorize URL a browser is sent to, the code
/// redemption, and refreshes. Used by the OAuth authorization front; the tokens never leave
/// the gateway except the access token for our own API.
public final class EntraSignIn: @unchecked Sendable {
    public let clientId: String
    /// e.g. https://login.microsoftonline.com (no trailing slash).
    public let authority: String
    /// The tenant segment of the URLs: a tenant id, or `organizations` / `common`.
    public let tenant: String
    let credential: ClientCredential
    let http: HTTPClient
    let clock: @Sendable () -> Double

    public init(clientId: String, authority: String, tenant: String, credential: ClientCredential, http: HTTPClient,
                clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) throws {
        guard IssuerTenantCheck.isGUID(tenant) || tenant == "organizations" || tenant == "common" else {
            throw TokenBrokerError.rejected(code: "invalid_request", detail: "the sign-in tenant must be a tenant id, organizations or common")
        }
        self.clientId = clientId
        self.authority = authority.hasSuffix("/") ? String(authority.dropLast()) : authority
        self.tenant = tenant.lowercased()
        self.credential = credential
        self.http = http
        self.clock = clock
    }

    /// What a code redemption or refresh brought back.
    public struct Tokens: Sendable {
        public var accessToken: String
        public var expiresAt: Double
        /// Entra rotates refresh tokens on use; nil only when it sent none (no `offline_access`).
        public var refreshToken: String?
        public var scope: String?
    }

    var tokenEndpoint: String { "\(authority)/\(tenant)/oauth2/v2.0/token" }

    /// Where the browser goes: Entra's authorize endpoint with our client, redirect URI, scopes,
    /// state, nonce and PKCE challenge. Never the RFC 8707 `resource` parameter, which Entra refuses
    /// unless it matches the scopes (AADSTS9010010).
    public func authorizeURL(redirectURI: String, scopes: [String], state: String, nonce: String, codeChallenge: String) -> String {
        "\(authority)/\(tenant)/oauth2/v2.0/authorize?" + URLEncoding.form([
            ("client_id", clientId), ("response_type", "code"), ("redirect_uri", redirectURI), ("response_mode", "query"),
            ("scope", scopes.joined(separator: " ")), ("state", state), ("nonce", nonce),
            ("code_challenge", codeChallenge), ("code_challenge_method", "S256"),
        ])
    }

    public func redeem(code: String, redirectURI: String, verifier: String, scopes: [String]) throws -> Tokens {
        try tokenRequest([("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI),
                          ("code_verifier", verifier), ("scope", scopes.joined(separator: " "))], scopes: scopes)
    }

    public func refresh(refreshToken: String, scopes: [String]) throws -> Tokens {
        try tokenRequest([("grant_type", "refresh_token"), ("refresh_token", refreshToken),
                          ("scope", scopes.joined(separator: " "))], scopes: scopes)
    }

    private func tokenRequest(_ fields: [(String, String)], scopes: [String]) throws -> Tokens {
        let now = clock()
        let endpoint = tokenEndpoint
        let form = [("client_id", clientId)] + fields + (try credential.tokenRequestFields(clientId: clientId, endpoint: endpoint, now: Int(now)))
        let response: UpstreamResponse
        do {
            // Not idempotent: a code is single use, and a refresh rotates.
            response = try http.send(UpstreamRequest(method: "POST", url: endpoint,
                                                     headers: [("Content-Type", "application/x-www-form-urlencoded"),
                                                               ("Accept", "application/json")],
                                                     body: Array(URLEncoding.form(form).utf8), idempotent: false))
        } catch let e as UpstreamError {
            throw TokenBrokerError.unavailable(e.description)
        }
        let json = try? JSONParser.parse(response.body, limits: JSONLimits(maxDepth: 8, maxBytes: 256 << 10))
        guard response.status == 200 else {
            throw EntraTokenBroker.mapError(status: response.status, body: json?.objectValue, scopes: scopes)
        }
        guard let o = json?.objectValue, let access = o["access_token"]?.stringValue, !access.isEmpty else {
            throw TokenBrokerError.unavailable("the token endpoint answered 200 without an access_token")
        }
        let lifetime = o["expires_in"]?.numberValue ?? o["expires_in"]?.stringValue.flatMap(Double.init) ?? 3600
        return Tokens(accessToken: access, expiresAt: now + lifetime,
                      refreshToken: o["refresh_token"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 },
                      scope: o["scope"]?.stringValue)
    }
}
