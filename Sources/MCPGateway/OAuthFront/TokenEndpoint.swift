import EntraAuth
import GatewayStore
import GatewaySupport
import MCPJSON
import UpstreamHTTP

/// `POST /oauth/token`: our codes and refresh tokens for Entra's access tokens. The client gets
/// Entra's access token for our API (so everything downstream is unchanged) and our own opaque
/// refresh token; Entra's refresh token never leaves the gateway.
struct TokenEndpoint: FrontEndpoint {
    let front: FrontContext

    /// Our refresh tokens are recognisable (for secret scanners) and carry 256 random bits.
    static let refreshTokenPrefix = "mcpr_"

    func respond(to request: HTTPRequest, requestId: String) -> HTTPResponse {
        let form: FormBody, client: OAuthClient
        switch ClientAuthenticator(front: front).clientRequest(request, endpoint: "token") {
        case .answer(let r): return r
        case .proceed(let (f, c)): (form, client) = (f, c)
        }
        do {
            switch form["grant_type"] {
            case "authorization_code": return try redeemCode(form, client: client, requestId: requestId)
            case "refresh_token": return try refresh(form, client: client, requestId: requestId)
            case nil, "": return FrontContext.oauthError(400, "invalid_request", "grant_type is required")
            default: return FrontContext.oauthError(400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
            }
        } catch let e as TokenBrokerError {
            Log.shared.warning("Entra refused a refresh", ["request_id": .string(requestId), "error": .string(e.description)])
            if case .rejected = e { return FrontContext.oauthError(400, "invalid_grant", "Microsoft no longer accepts this sign-in; sign in again") }
            return FrontContext.oauthError(503, "temporarily_unavailable", "Microsoft's token endpoint is unavailable; try again shortly",
                                           headers: [("Retry-After", "5")])
        } catch {
            Log.shared.error("token endpoint failed", ["request_id": .string(requestId), "error": .string("\(error)")])
            return FrontContext.oauthError(503, "temporarily_unavailable", "the server cannot issue tokens right now; try again shortly",
                                           headers: [("Retry-After", "5")])
        }
    }

    private func redeemCode(_ form: FormBody, client: OAuthClient, requestId: String) throws -> HTTPResponse {
        guard let code = form.value("code"), let redirectURI = form.value("redirect_uri"), let verifier = form.value("code_verifier") else {
            return FrontContext.oauthError(400, "invalid_request", "code, redirect_uri and code_verifier are required")
        }
        let now = front.now
        guard let redemption = try front.store.redeemAuthorizationCode(sha256: FrontRandom.sha256(code), now: now) else {
            return FrontContext.oauthError(400, "invalid_grant", "the code is unknown or expired")
        }
        let stored = redemption.code
        if redemption.alreadyUsed {
            // RFC 6749 §4.1.2: a code used twice may have been stolen; what it granted goes too.
            _ = try front.store.revokeGrant(id: stored.grantId, now: now)
            Log.shared.warning("authorization code replayed; its grant is revoked", ["request_id": .string(requestId),
                                                                                   "client_id": .string(client.clientId)])
            return FrontContext.oauthError(400, "invalid_grant", "the code was already used; the grant it produced is revoked")
        }
        guard stored.clientId == client.clientId else {
            return FrontContext.oauthError(400, "invalid_grant", "the code was issued to another client")
        }
        guard stored.expiresAt > now else { return FrontContext.oauthError(400, "invalid_grant", "the code has expired") }
        guard stored.redirectURI == redirectURI else {
            return FrontContext.oauthError(400, "invalid_grant", "redirect_uri differs from the authorization request's")
        }
        guard TokenEndpoint.isVerifier(verifier), FrontRandom.challenge(of: verifier) == stored.codeChallenge else {
            return FrontContext.oauthError(400, "invalid_grant", "the PKCE code_verifier does not match the code_challenge")
        }
        if let resource = form.value("resource"), !AuthorizeEndpoint.sameResource(resource, stored.resource ?? front.resource) {
            return FrontContext.oauthError(400, "invalid_target", "resource must be this server's MCP endpoint, \(front.resource)")
        }
        guard let grant = try front.store.grant(id: stored.grantId), grant.revokedAt == nil else {
            return FrontContext.oauthError(400, "invalid_grant", "the grant was revoked")
        }
        let access = try front.secrets.unseal(stored.sealedAccessToken, boundTo: "code:" + stored.sha256)
        let refresh = try issueRefreshToken(for: grant, now: now)
        Log.shared.info("tokens issued for a code", ["request_id": .string(requestId), "client_id": .string(client.clientId)])
        return tokenResponse(access: access, expiresAt: stored.accessTokenExpiresAt, scopes: stored.scopes, refresh: refresh, now: now)
    }

    private func refresh(_ form: FormBody, client: OAuthClient, requestId: String) throws -> HTTPResponse {
        guard let presented = form.value("refresh_token") else {
            return FrontContext.oauthError(400, "invalid_request", "refresh_token is required")
        }
        let now = front.now
        let digest = FrontRandom.sha256(presented)
        guard let stored = try front.store.refreshToken(sha256: digest), let grant = try front.store.grant(id: stored.grantId),
              grant.revokedAt == nil, stored.expiresAt > now else {
            return FrontContext.oauthError(400, "invalid_grant", "the refresh token is unknown, expired or revoked")
        }
        guard grant.clientId == client.clientId else {
            return FrontContext.oauthError(400, "invalid_grant", "the refresh token was issued to another client")
        }
        let grace = Double(front.oauth.refreshGraceSeconds)
        if let rotated = stored.rotatedAt {
            // A late concurrent refresh is fine for a moment; a replay after that means the token leaked.
            guard now - rotated <= grace else { return revokeOnReuse(grant, requestId: requestId, now: now) }
        } else if try !front.store.markRefreshTokenRotated(sha256: digest, now: now) {
            // Another process rotated it this instant: the same grace applies.
            guard let again = try front.store.refreshToken(sha256: digest), let rotated = again.rotatedAt, now - rotated <= grace else {
                return revokeOnReuse(grant, requestId: requestId, now: now)
            }
        }
        var scopes = grant.scopes
        if let asked = form.value("scope") {
            let list = asked.split(separator: " ").map(String.init)
            guard list.allSatisfy(grant.scopes.contains) else {
                return FrontContext.oauthError(400, "invalid_scope", "a refresh may narrow the granted scopes, never widen them")
            }
            scopes = list
        }
        guard !grant.sealedRefreshToken.isEmpty else {
            return FrontContext.oauthError(400, "invalid_grant", "this grant cannot be refreshed; sign in again")
        }
        let upstreamRefresh = try front.secrets.unseal(grant.sealedRefreshToken, boundTo: "grant:" + grant.id)
        let tokens = try front.signIn.refresh(refreshToken: upstreamRefresh, scopes: scopes + FrontContext.signInScopes)
        // Still a user this server accepts (tenant allow-list, audience): the policy may have changed.
        if case .failure(let e) = front.verifier.check(tokens.accessToken) {
            _ = try front.store.revokeGrant(id: grant.id, now: now)
            return FrontContext.oauthError(400, "invalid_grant", "this account may no longer use this server: \(e.errorDescription)")
        }
        if let rotatedUpstream = tokens.refreshToken {
            try front.store.updateGrantUpstreamToken(id: grant.id, sealedRefreshToken: try front.secrets.seal(rotatedUpstream, boundTo: "grant:" + grant.id),
                                                     now: now)
        }
        let refresh = try issueRefreshToken(for: grant, now: now)
        Log.shared.info("tokens refreshed", ["request_id": .string(requestId), "client_id": .string(client.clientId)])
        return tokenResponse(access: tokens.accessToken, expiresAt: tokens.expiresAt, scopes: scopes, refresh: refresh, now: now)
    }

    private func revokeOnReuse(_ grant: OAuthGrant, requestId: String, now: Double) -> HTTPResponse {
        _ = try? front.store.revokeGrant(id: grant.id, now: now)
        Log.shared.warning("refresh token reused after rotation; the grant is revoked", ["request_id": .string(requestId),
                                                                                          "client_id": .string(grant.clientId)])
        return FrontContext.oauthError(400, "invalid_grant", "the refresh token was already used; the grant is revoked, sign in again")
    }

    /// nil when the grant holds no Entra refresh token (the client then signs in again when the access token ends).
    private func issueRefreshToken(for grant: OAuthGrant, now: Double) throws -> String? {
        guard !grant.sealedRefreshToken.isEmpty else { return nil }
        let token = Self.refreshTokenPrefix + Hex.random(words: 4)
        try front.store.saveRefreshToken(StoredRefreshToken(sha256: FrontRandom.sha256(token), grantId: grant.id, createdAt: now,
                                                            expiresAt: now + Double(front.oauth.refreshDays) * 86_400))
        return token
    }

    private func tokenResponse(access: String, expiresAt: Double, scopes: [String], refresh: String?, now: Double) -> HTTPResponse {
        var o = JSONObject()
        o["access_token"] = .string(access)
        o["token_type"] = "Bearer"
        o["expires_in"] = .integer(max(0, Int(expiresAt - now)))
        o["scope"] = .string(scopes.joined(separator: " "))
        if let refresh { o["refresh_token"] = .string(refresh) }
        return HTTPResponse.json(200, .object(o), headers: FrontContext.noStore + FrontContext.cors)
    }

    /// RFC 7636 §4.1: 43 to 128 unreserved characters.
    static func isVerifier(_ v: String) -> Bool {
        (43...128).contains(v.utf8.count) && v.utf8.allSatisfy { b in
            AuthorizeEndpoint.isBase64URL(b) || b == UInt8(ascii: ".") || b == UInt8(ascii: "~")
        }
    }
}

/// `POST /oauth/revoke` (RFC 7009): a refresh token of the authenticated client revokes its grant.
/// Every other token also answers 200, so nothing is learned by guessing.
struct RevocationEndpoint: FrontEndpoint {
    let front: FrontContext

    func respond(to request: HTTPRequest, requestId: String) -> HTTPResponse {
        let form: FormBody, client: OAuthClient
        switch ClientAuthenticator(front: front).clientRequest(request, endpoint: "revocation") {
        case .answer(let r): return r
        case .proceed(let (f, c)): (form, client) = (f, c)
        }
        guard let token = form.value("token") else { return FrontContext.oauthError(400, "invalid_request", "token is required") }
        do {
            if let stored = try front.store.refreshToken(sha256: FrontRandom.sha256(token)),
               let grant = try front.store.grant(id: stored.grantId), grant.clientId == client.clientId {
                _ = try front.store.revokeGrant(id: grant.id, now: front.now)
                Log.shared.info("grant revoked by its client", ["request_id": .string(requestId), "client_id": .string(client.clientId)])
            }
        } catch {
            return FrontContext.oauthError(503, "temporarily_unavailable", "the server cannot revoke right now; try again shortly",
                                           headers: [("Retry-After", "5")])
        }
        return HTTPResponse(status: 200, headers: FrontContext.noStore + FrontContext.cors)
    }
}

/// Who is calling the token or revocation endpoint: the client id from HTTP Basic or the form,
/// authenticated as it registered (public clients send no secret; confidential ones must).
struct ClientAuthenticator {
    let front: FrontContext

    /// What the token and revocation endpoints start with: POST (a CORS preflight answered), a
    /// form body, and the client that sent it, authenticated.
    func clientRequest(_ request: HTTPRequest, endpoint: String) -> FrontStep<(FormBody, OAuthClient)> {
        if let refusal = FrontContext.postOnly(request, endpoint: endpoint) { return .answer(refusal) }
        switch FrontContext.form(request) {
        case .answer(let r): return .answer(r)
        case .proceed(let form):
            switch authenticate(request, form: form) {
            case .answer(let r): return .answer(r)
            case .proceed(let client): return .proceed((form, client))
            }
        }
    }

    func authenticate(_ request: HTTPRequest, form: FormBody) -> FrontStep<OAuthClient> {
        let authorization = request.headers["authorization"]
        var clientId = form.value("client_id")
        if let basic = authorization.flatMap(BasicCredentials.init(header:)) { clientId = basic.clientId }
        guard let clientId else { return .answer(FrontContext.oauthError(401, "invalid_client", "the client is not identified (client_id)")) }
        let client: OAuthClient
        do {
            guard let found = try front.directory.client(id: clientId) else {
                return .answer(FrontContext.oauthError(401, "invalid_client", "unknown client"))
            }
            client = found
        } catch ClientLookupError.storeUnavailable {
            return .answer(FrontContext.oauthError(503, "temporarily_unavailable", "the server's shared store is unavailable; try again shortly",
                                                   headers: [("Retry-After", "5")]))
        } catch {
            return .answer(FrontContext.oauthError(401, "invalid_client", "\(error)"))
        }
        switch front.directory.authenticate(client, form: form.fields, authorization: authorization) {
        case .authenticated: return .proceed(client)
        case .failed(let description, let usedBasic):
            return .answer(FrontContext.oauthError(401, "invalid_client", description,
                                                    headers: usedBasic ? [("WWW-Authenticate", "Basic realm=\"oauth\"")] : []))
        }
    }
}
