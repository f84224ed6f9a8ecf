import EntraAuth
import GatewayStore
import GatewaySupport
import UpstreamHTTP

/// `GET /oauth/callback`: Entra sends the browser back here. The pending authorization is taken
/// exactly once; Entra's code is redeemed with our PKCE verifier; its access token is checked by
/// the same verifier the MCP endpoint uses (audience, issuer, tenant allow-list, lifetime), so a
/// user this server would refuse never gets a code from us. Then our own code goes to the client.
struct CallbackEndpoint: FrontEndpoint {
    let front: FrontContext

    func respond(to request: HTTPRequest, requestId: String) -> HTTPResponse {
        let query: FormBody
        switch FrontContext.browserQuery(request, expects: "Microsoft's sign-in returning here") {
        case .answer(let r): return r
        case .proceed(let q): query = q
        }
        let now = front.now
        let pending: PendingAuthorization
        do {
            guard let state = query.value("state"), let found = try front.store.takePendingAuthorization(upstreamState: state, now: now) else {
                return ConsentPage.error(400, title: "Sign-in expired",
                                         detail: "This sign-in has expired or was already completed. Start again from your application.")
            }
            pending = found
        } catch {
            Log.shared.error("shared store unavailable during the sign-in callback", ["request_id": .string(requestId)])
            return ConsentPage.error(503, title: "Try again shortly", detail: "The server cannot complete sign-ins right now.")
        }
        func fail(_ error: String, _ description: String) -> HTTPResponse {
            front.redirectError(to: pending.redirectURI, state: pending.clientState, error, description)
        }
        if let error = query.value("error") {
            Log.shared.info("sign-in at Entra did not complete", ["request_id": .string(requestId), "error": .string(FormBody.printable(error))])
            return fail(error == "access_denied" ? "access_denied" : "server_error",
                        "the sign-in at Microsoft did not complete (\(FormBody.printable(error)))")
        }
        guard let code = query.value("code"), let verifier = pending.upstreamVerifier else {
            return fail("server_error", "Microsoft's sign-in answered without a code")
        }
        let tokens: EntraSignIn.Tokens
        do {
            tokens = try front.signIn.redeem(code: code, redirectURI: front.callbackURL, verifier: verifier,
                                             scopes: pending.scopes + FrontContext.signInScopes)
        } catch {
            Log.shared.warning("Entra refused the sign-in code", ["request_id": .string(requestId), "error": .string("\(error)")])
            return fail("server_error", "Microsoft did not accept the sign-in: \(error)")
        }
        let principal: Principal
        switch front.verifier.check(tokens.accessToken) {
        case .failure(let e):
            Log.shared.info("signed-in user refused by the token policy", ["request_id": .string(requestId), "reason": .string(e.reasonCode)])
            return fail("access_denied", "this account may not use this server: \(e.errorDescription)")
        case .success(let p): principal = p
        }
        do {
            let grantId = FrontRandom.token()
            let sealedRefresh = try tokens.refreshToken.map { try front.secrets.seal($0, boundTo: "grant:" + grantId) } ?? []
            try front.store.saveGrant(OAuthGrant(id: grantId, clientId: pending.clientId, tenant: principal.tenantId,
                                                 user: principal.objectId, scopes: pending.scopes, resource: pending.resource,
                                                 sealedRefreshToken: sealedRefresh, createdAt: now, updatedAt: now))
            let ourCode = FrontRandom.token()
            let digest = FrontRandom.sha256(ourCode)
            try front.store.saveAuthorizationCode(StoredAuthorizationCode(
                sha256: digest, grantId: grantId, clientId: pending.clientId, redirectURI: pending.redirectURI,
                codeChallenge: pending.codeChallenge, scopes: pending.scopes, resource: pending.resource,
                sealedAccessToken: try front.secrets.seal(tokens.accessToken, boundTo: "code:" + digest),
                accessTokenExpiresAt: tokens.expiresAt, expiresAt: now + Double(front.oauth.codeSeconds)))
            Log.shared.info("sign-in complete; code issued", ["request_id": .string(requestId), "client_id": .string(pending.clientId),
                                                              "tenant": .string(principal.tenantId), "user": .string(principal.objectId)])
            return front.redirect(to: pending.redirectURI, [("code", ourCode), ("state", pending.clientState)])
        } catch {
            Log.shared.error("cannot store the grant", ["request_id": .string(requestId), "error": .string("\(error)")])
            return fail("temporarily_unavailable", "the server cannot complete sign-ins right now; try again shortly")
        }
    }
}
