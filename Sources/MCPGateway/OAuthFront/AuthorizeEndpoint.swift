import GatewayStore
import GatewaySupport

/// `GET /oauth/authorize`: every check happens before anything is redirected. Until the client
/// and its redirect URI are trusted, errors are a page a person reads, never a redirect (no
/// open redirector); after that they go back to the client as RFC 6749 §4.1.2.1 errors.
struct AuthorizeEndpoint: FrontEndpoint {
    let front: FrontContext

    func respond(to request: HTTPRequest, requestId: String) -> HTTPResponse {
        // GET only: a HEAD would start a sign-in nobody sees.
        let query: FormBody
        switch FrontContext.browserQuery(request, expects: "The authorization endpoint") {
        case .answer(let r): return r
        case .proceed(let q): query = q
        }
        guard let clientId = query.value("client_id") else {
            return ConsentPage.error(400, title: "Malformed sign-in request", detail: "The request names no client (client_id).")
        }
        let client: OAuthClient
        do {
            guard let found = try front.directory.client(id: clientId) else {
                return ConsentPage.error(400, title: "Unknown application",
                                         detail: "The application asking to sign you in is not registered with this server.")
            }
            client = found
        } catch ClientLookupError.storeUnavailable {
            return ConsentPage.error(503, title: "Try again shortly", detail: "The server cannot take sign-ins right now.")
        } catch {
            return ConsentPage.error(400, title: "Unknown application", detail: "\(error)")
        }
        guard let redirectURI = query.value("redirect_uri") else {
            return ConsentPage.error(400, title: "Malformed sign-in request", detail: "The request names no redirect_uri.")
        }
        guard client.allows(redirectURI: redirectURI) else {
            Log.shared.warning("authorization refused: redirect URI not registered for the client", ["request_id": .string(requestId)])
            return ConsentPage.error(400, title: "Unregistered return address",
                                     detail: "The address this application wants to send you back to is not one it registered, so the sign-in stops here.")
        }
        // The redirect URI is trusted from here on: errors go back to it.
        let state = query.value("state")
        func fail(_ error: String, _ description: String) -> HTTPResponse {
            front.redirectError(to: redirectURI, state: state, error, description)
        }
        guard query["response_type"] == "code" else {
            return fail("unsupported_response_type", "only response_type=code is supported")
        }
        guard let state else { return fail("invalid_request", "state is required") }
        guard let challenge = query.value("code_challenge") else {
            return fail("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256")
        }
        guard query["code_challenge_method"] == "S256" else {
            return fail("invalid_request", "code_challenge_method must be S256")
        }
        guard challenge.utf8.count == 43, challenge.utf8.allSatisfy(AuthorizeEndpoint.isBase64URL) else {
            return fail("invalid_request", "code_challenge must be the base64url SHA-256 of the verifier (43 characters)")
        }
        // Scopes we add ourselves on the Entra leg are not the client's to ask for.
        let asked = (query["scope"] ?? "").split(separator: " ").map(String.init)
            .filter { !FrontContext.signInScopes.contains($0) }
        let unknown = asked.filter { !front.oauth.scopes.contains($0) }
        guard unknown.isEmpty else { return fail("invalid_scope", "unknown scope: \(FormBody.printable(unknown[0]))") }
        let scopes = asked.isEmpty ? front.oauth.scopes : asked
        let resource = query.value("resource")
        if let resource, !AuthorizeEndpoint.sameResource(resource, front.resource) {
            return fail("invalid_target", "resource must be this server's MCP endpoint, \(front.resource)")
        }
        let now = front.now
        var pending = PendingAuthorization(id: FrontRandom.token(), clientId: client.clientId, redirectURI: redirectURI,
                                           clientState: state, codeChallenge: challenge, scopes: scopes, resource: resource,
                                           createdAt: now, expiresAt: now + Double(front.oauth.authorizeMinutes) * 60)
        let consent = ConsentCookie.read(cookieHeader: request.headers["cookie"], secrets: front.secrets, now: now)
        do {
            if consent.covers(clientId: client.clientId, redirectURI: redirectURI) {
                return try UpstreamLeg(front: front).begin(&pending, setCookie: nil)
            }
            try front.store.savePendingAuthorization(pending)
        } catch {
            Log.shared.error("cannot store a pending authorization", ["request_id": .string(requestId), "error": .string("\(error)")])
            return fail("temporarily_unavailable", "the server cannot take sign-ins right now; try again shortly")
        }
        let host = AuthorizeEndpoint.host(of: redirectURI)
        // The consent answer must come from the browser that was shown this page: a page fetched by
        // someone else (who then makes a victim's browser post it) lacks this browser's cookie.
        let browser = FrontRandom.token()
        var page = ConsentPage.render(.init(
            serverName: front.config.auth.resourceName ?? front.config.server.name, clientName: client.clientName,
            clientId: client.clientId, redirectURI: redirectURI, redirectHost: host, scopes: scopes,
            formAction: front.oauth.basePath + "/oauth/consent", requestId: pending.id,
            csrf: ConsentEndpoint.csrf(front.secrets, request: pending.id, browser: browser),
            clientIsSelfDescribed: client.source != .config,
            signInAuthority: front.config.credential?.authority ?? front.config.auth.authority))
        page.headers.append(("Set-Cookie", "\(ConsentEndpoint.browserCookie)=\(browser); Max-Age=\(front.oauth.authorizeMinutes * 60); "
                                            + "Path=/; Secure; HttpOnly; SameSite=Lax"))
        return page
    }

    static func isBase64URL(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
    }

    /// RFC 8707 resource indicators compare as URIs: scheme and host case-insensitively, and
    /// a trailing slash is not a different resource.
    static func sameResource(_ a: String, _ b: String) -> Bool {
        func canonical(_ s: String) -> String {
            var t = s
            while t.hasSuffix("/") { t.removeLast() }
            guard let schemeEnd = t.firstRange(of: "://") else { return t }
            let rest = t[schemeEnd.upperBound...]
            let hostEnd = rest.firstIndex(of: "/") ?? rest.endIndex
            return t[..<schemeEnd.lowerBound].lowercased() + "://" + rest[..<hostEnd].lowercased() + rest[hostEnd...]
        }
        return canonical(a) == canonical(b)
    }

    /// The host a person is sent back to, shown plainly on the consent page.
    static func host(of uri: String) -> String { StrictURL(uri)?.authority ?? uri }
}

/// Sends the browser on to Entra once the person has consented: our own PKCE, state and nonce,
/// stored on the pending authorization only now (the state is never stored before consent).
struct UpstreamLeg {
    let front: FrontContext

    func begin(_ pending: inout PendingAuthorization, setCookie: String?) throws -> HTTPResponse {
        let verifier = FrontRandom.token()
        pending.upstreamState = FrontRandom.token()
        pending.upstreamVerifier = verifier
        pending.nonce = FrontRandom.token()
        try front.store.savePendingAuthorization(pending)
        let location = front.signIn.authorizeURL(redirectURI: front.callbackURL, scopes: pending.scopes + FrontContext.signInScopes,
                                                 state: pending.upstreamState!, nonce: pending.nonce!,
                                                 codeChallenge: FrontRandom.challenge(of: verifier))
        var headers = [("Location", location)]
        if let setCookie { headers.append(("Set-Cookie", setCookie)) }
        return HTTPResponse(status: 302, headers: headers)
    }
}

/// `POST /oauth/consent`: the person's answer on the consent page, CSRF-protected and bound to
/// the browser the page was shown in.
struct ConsentEndpoint: FrontEndpoint {
    let front: FrontContext

    /// Set with the consent page: a random value only that browser has (SameSite=Lax keeps it off
    /// cross-site posts).
    static let browserCookie = "__Host-mcp_authorize"

    static func csrf(_ secrets: FrontSecrets, request: String, browser: String) -> String {
        secrets.sign("consent-csrf", request + "\u{0}" + browser)
    }

    func respond(to request: HTTPRequest, requestId: String) -> HTTPResponse {
        guard request.method == "POST" else {
            return ConsentPage.error(405, title: "Method not allowed", detail: "The consent form is sent with POST.")
        }
        let form: FormBody
        switch FrontContext.form(request) {
        case .answer: return ConsentPage.error(400, title: "Malformed consent", detail: "The consent form could not be read.")
        case .proceed(let f): form = f
        }
        let browser = ConsentCookie.cookie(ConsentEndpoint.browserCookie, in: request.headers["cookie"])
        guard let id = form.value("request"), let csrf = form.value("csrf"), let browser,
              front.secrets.verify("consent-csrf", id + "\u{0}" + browser, tag: csrf) else {
            Log.shared.warning("consent refused: missing or wrong CSRF token", ["request_id": .string(requestId)])
            return ConsentPage.error(403, title: "Consent not accepted",
                                     detail: "This form did not come from this server's consent page. Start the sign-in again from your application.")
        }
        let now = front.now
        do {
            guard var pending = try front.store.pendingAuthorization(id: id, now: now), pending.upstreamState == nil else {
                return ConsentPage.error(400, title: "Sign-in expired",
                                         detail: "This sign-in has expired or was already answered. Start again from your application.")
            }
            guard form["decision"] == "allow" else {
                // Answered: a state nobody was given closes the request, so the same form cannot be allowed after all.
                pending.upstreamState = FrontRandom.token()
                try front.store.savePendingAuthorization(pending)
                Log.shared.info("consent denied", ["request_id": .string(requestId), "client_id": .string(pending.clientId)])
                return front.redirectError(to: pending.redirectURI, state: pending.clientState, "access_denied",
                                           "the user did not allow this application")
            }
            let days = front.oauth.consentDays
            let cookie = ConsentCookie.read(cookieHeader: request.headers["cookie"], secrets: front.secrets, now: now)
                .adding(clientId: pending.clientId, redirectURI: pending.redirectURI, until: Int(now) + days * 86_400)
            Log.shared.info("consent given", ["request_id": .string(requestId), "client_id": .string(pending.clientId)])
            return try UpstreamLeg(front: front).begin(&pending, setCookie: cookie.setCookie(secrets: front.secrets, maxAgeSeconds: days * 86_400))
        } catch {
            Log.shared.error("shared store unavailable during consent", ["request_id": .string(requestId), "error": .string("\(error)")])
            return ConsentPage.error(503, title: "Try again shortly", detail: "The server cannot complete sign-ins right now.")
        }
    }
}
