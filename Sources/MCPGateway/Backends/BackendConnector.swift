import GatewayStore
import GatewaySupport
import EntraAuth
import FoundationEssentials
import MCPJSON
import UpstreamHTTP

/// Talks to one backend on behalf of one caller at a time: picks the credential the
/// backend's auth mode asks for, keeps each user's session in the shared store (sealed),
/// and words every failure for the person reading the tool result.
/// Plain blocking work on the calling worker thread.
final class BackendConnector: @unchecked Sendable {
    let settings: BackendSettings
    private let http: HTTPClient
    private let broker: TokenBroker?
    private let store: BackendSessionStore
    private let cipher: SessionCipher?
    private let apiKey: String?
    private let clock: @Sendable () -> Double
    /// Threads of this process that find the same user's session missing sign in once, not each.
    private let signInLocks = (0..<16).map { _ in Lock() }

    init(settings: BackendSettings, http: HTTPClient, broker: TokenBroker?, store: BackendSessionStore, cipher: SessionCipher?,
         apiKey: String?, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.settings = settings
        self.http = http
        self.broker = broker
        self.store = store
        self.cipher = cipher
        self.apiKey = apiKey
        self.clock = clock
    }

    var name: String { settings.name }

    /// Where this caller's requests go: the backend's URL and scope, or its tenant's overrides.
    struct Target {
        let baseURL: String
        let scope: String?
    }

    func target(for caller: Caller) throws -> Target {
        let override = caller.tenant?.backends?[name]
        if override?.enabled == false { throw ToolError("The backend \(name) is not enabled for your organisation.") }
        // A tenant's own host gets tokens only for its own scope: the shared backend's scope would
        // hand that host a token it could replay against the shared backend.
        guard let url = override?.baseURL else { return Target(baseURL: settings.baseURL, scope: override?.scope ?? settings.scope) }
        return Target(baseURL: url, scope: override?.scope)
    }

    enum Credential { case token, session, apiKey }

    func credential(for route: BackendToolSpec.Route?) -> Credential {
        switch settings.authMode {
        case .token: return .token
        case .session: return .session
        case .apiKey: return .apiKey
        case .hybrid: return route == .api ? .token : .session
        }
    }

    // MARK: - Requests

    /// Sends one request for a tool. With a session, a 401 answer re-establishes the
    /// session once and repeats the request (the backend refused it before acting on it).
    func send(method: String, pathAndQuery: String, body: [UInt8]?, route: BackendToolSpec.Route?, caller: Caller) throws -> UpstreamResponse {
        let target = try target(for: caller)
        var headers: [(String, String)] = [("Accept", "application/json")]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        let url = target.baseURL + pathAndQuery
        switch credential(for: route) {
        case .apiKey:
            guard let apiKey else { throw ToolError("The backend \(name) has no API key loaded.") }
            return try exchange(UpstreamRequest(method: method, url: url, headers: headers + [(settings.apiKeyHeader, apiKey)],
                                                body: body ?? [], timeoutSeconds: settings.timeoutSeconds))
        case .token:
            let token = try onBehalfOfToken(caller, target)
            return try exchange(UpstreamRequest(method: method, url: url, headers: headers + [("Authorization", "Bearer \(token)")],
                                                body: body ?? [], timeoutSeconds: settings.timeoutSeconds))
        case .session:
            var (session, fresh) = try openSession(caller, target)
            func attempt() throws -> UpstreamResponse {
                let cookie = session.jar.header(now: clock()) ?? ""
                return try exchange(UpstreamRequest(method: method, url: url, headers: headers + [("Cookie", cookie)],
                                                    body: body ?? [], timeoutSeconds: settings.timeoutSeconds))
            }
            var response = try attempt()
            if response.status == 401 && !fresh {
                Log.shared.info("backend refused a stored session; signing in again", ["backend": .string(name), "caller": .string(caller.key)])
                session = try signIn(caller, target, replacing: session.stored.sealed)
                fresh = true
                response = try attempt()
            }
            try keepRotatedCookies(response, &session, target)
            return response
        }
    }

    private func exchange(_ request: UpstreamRequest) throws -> UpstreamResponse {
        do {
            return try http.send(request)
        } catch let e as UpstreamError {
            throw ToolError("The backend \(name) could not be reached: \(e.description).")
        }
    }

    private func onBehalfOfToken(_ caller: Caller, _ target: Target) throws -> String {
        guard let broker else { throw ToolError("The backend \(name) has no token broker configured.") }
        guard let scope = target.scope else { throw ToolError("The backend \(name) has no Entra scope for your organisation's host.") }
        guard let principal = caller.principal, !principal.isAppOnly else {
            throw ToolError(TokenBrokerError.delegatedAccessNeedsUser.description)
        }
        // Another provider's token is never passed on nor exchanged: On-Behalf-Of takes Entra tokens only.
        guard principal.isEntra else {
            throw ToolError("The backend \(name) acts On-Behalf-Of an Entra user, and you signed in with \(principal.provider): only Entra users can use it")
        }
        guard let assertion = caller.bearerToken else {
            throw ToolError("The backend \(name) needs your own Entra token to act for you, and this request carried none (signed in through a front proxy).")
        }
        do {
            return try broker.token(TokenRequest(tenantId: principal.tenantId, scopes: [scope],
                grant: .onBehalfOf(userAssertion: assertion, userKey: "\(principal.tenantId)/\(principal.objectId)"))).accessToken
        } catch let e as TokenBrokerError {
            throw ToolError("No token for the backend \(name): \(e.description)")
        }
    }

    // MARK: - Sessions

    struct LiveSession {
        let key: BackendSessionKey
        var jar: CookieJar
        var stored: StoredBackendSession
    }

    func sessionKey(_ caller: Caller) throws -> BackendSessionKey {
        guard let p = caller.principal else { throw ToolError("The backend \(name) needs a signed-in caller.") }
        return BackendSessionKey(instance: caller.instance, tenant: p.tenantId, user: p.objectId, backend: name)
    }

    /// The stored session if it opens with this row's key and URL; anything else counts as none.
    func storedSession(_ key: BackendSessionKey, _ target: Target) throws -> LiveSession? {
        guard let cipher else { throw ToolError("The backend \(name) has no session key loaded.") }
        let stored: StoredBackendSession?
        do { stored = try store.backendSession(key) } catch {
            throw ToolError("The session store is unavailable; try again shortly.")
        }
        guard let stored,
              let plain = try? cipher.unseal(stored.sealed, associatedData: key.associatedData(baseURL: target.baseURL)),
              let jar = try? CookieJar(serialized: plain) else { return nil }
        return LiveSession(key: key, jar: jar, stored: stored)
    }

    /// A usable session: the stored one (checked with user info when the last check is
    /// older than `session_check_seconds`), else a new one. `fresh` tells if it was just made.
    func openSession(_ caller: Caller, _ target: Target) throws -> (LiveSession, fresh: Bool) {
        let key = try sessionKey(caller)
        let now = clock()
        let current = try storedSession(key, target)
        if var session = current, !session.jar.isExpired(now: now) {
            if now - session.stored.checkedAt < Double(settings.sessionCheckSeconds) { return (session, false) }
            if try check(&session, caller, target) {
                try? store.markBackendSessionChecked(key, sealed: session.stored.sealed, at: now)
                return (session, false)
            }
        }
        return (try signIn(caller, target, replacing: current?.stored.sealed), true)
    }

    /// Asks the user-info endpoint whether the session still works. False for 401 or a
    /// redirect (to a login page); other failures are errors.
    func check(_ session: inout LiveSession, _ caller: Caller, _ target: Target) throws -> Bool {
        let response = try exchange(UpstreamRequest(method: "GET", url: target.baseURL + settings.userInfoPath,
                                                    headers: [("Accept", "application/json"), ("Cookie", session.jar.header(now: clock()) ?? "")],
                                                    timeoutSeconds: settings.timeoutSeconds))
        if response.status == 401 || (300..<400).contains(response.status) { return false }
        guard (200..<300).contains(response.status) else { throw BackendFailure.error(name, response, action: "checking your session") }
        try confirmIdentity(response, caller)
        try keepRotatedCookies(response, &session, target)
        return true
    }

    /// With `user_info_id_field`, the backend must say the session is the caller's own.
    private func confirmIdentity(_ response: UpstreamResponse, _ caller: Caller) throws {
        guard let field = settings.userInfoIdField else { return }
        guard let info = try? JSONParser.parse(response.body, limits: JSONLimits(maxDepth: 16, maxBytes: settings.maxResponseBytes)) else {
            throw ToolError("The backend \(name) answered the session check with a body that is not JSON (\(response.status)); the gateway refused to use the session.",
                            upstreamStatus: response.status)
        }
        guard let said = info[field]?.stringValue, let oid = caller.principal?.objectId,
              said.lowercased() == oid.lowercased() else {
            Log.shared.warning("backend session belongs to someone else; refused", ["backend": .string(name), "caller": .string(caller.key)])
            throw ToolError("The backend \(name) reported a different user for your session; the gateway refused to use it.")
        }
    }

    /// Signs in with an On-Behalf-Of token at `login_path`, checks the new session with
    /// user info, and stores it sealed. If another thread or process already replaced
    /// `replacing` with a live session, that one is used instead.
    func signIn(_ caller: Caller, _ target: Target, replacing old: [UInt8]?) throws -> LiveSession {
        let key = try sessionKey(caller)
        let lock = signInLocks[Int(UInt(bitPattern: key.hashValue) % UInt(signInLocks.count))]
        lock.lock()
        defer { lock.unlock() }
        if let current = try storedSession(key, target), current.stored.sealed != old, !current.jar.isExpired(now: clock()) {
            return current
        }
        let token = try onBehalfOfToken(caller, target)
        let response = try exchange(UpstreamRequest(method: "POST", url: target.baseURL + settings.loginPath,
                                                    headers: [("Accept", "application/json"), ("Content-Type", "application/json"),
                                                              ("Authorization", "Bearer \(token)")],
                                                    body: Array("{}".utf8), idempotent: true, timeoutSeconds: settings.timeoutSeconds))
        guard (200..<300).contains(response.status) else {
            throw BackendFailure.error(name, response, action: "signing you in")
        }
        let now = clock()
        var jar = CookieJar()
        jar.absorb(response.headers.filter { $0.0 == "set-cookie" }.map { $0.1 }, now: now)
        guard !jar.isEmpty, !jar.isExpired(now: now) else {
            throw ToolError("The backend \(name) accepted the sign-in but set no session cookie (check login_path).")
        }
        var session = LiveSession(key: key, jar: jar, stored: StoredBackendSession(sealed: [], expiresAt: nil, checkedAt: now))
        guard try check(&session, caller, target) else {
            throw ToolError("The backend \(name) did not accept the session it had just created.")
        }
        try save(&session, target, checkedAt: now)
        Log.shared.info("backend session established", ["backend": .string(name), "caller": .string(caller.key)])
        return session
    }

    /// Backends may rotate their cookie on any answer; the new one replaces the stored one.
    private func keepRotatedCookies(_ response: UpstreamResponse, _ session: inout LiveSession, _ target: Target) throws {
        let setCookies = response.headers.filter { $0.0 == "set-cookie" }.map { $0.1 }
        guard !setCookies.isEmpty, session.jar.absorb(setCookies, now: clock()), !session.stored.sealed.isEmpty else { return }
        try save(&session, target, checkedAt: session.stored.checkedAt)
    }

    private func save(_ session: inout LiveSession, _ target: Target, checkedAt: Double) throws {
        guard let cipher else { throw ToolError("The backend \(name) has no session key loaded.") }
        let sealed = try cipher.seal(session.jar.serialized, associatedData: session.key.associatedData(baseURL: target.baseURL))
        session.stored = StoredBackendSession(sealed: sealed, expiresAt: session.jar.expiresAt, checkedAt: checkedAt)
        do { try store.saveBackendSession(session.key, session.stored, now: clock()) } catch {
            throw ToolError("The session store is unavailable; try again shortly.")
        }
    }

    /// Ends the caller's session at the backend (logout endpoint) and forgets it here.
    func logout(_ caller: Caller) throws -> JSONObject {
        let target = try target(for: caller)
        let key = try sessionKey(caller)
        var result = JSONObject(pairs: [("backend", .string(name))])
        guard let session = try storedSession(key, target) else {
            _ = try? store.deleteBackendSession(key)
            result["ended"] = false
            result["detail"] = "No session with this backend was open."
            return result
        }
        var backendNote: String
        do {
            let response = try http.send(UpstreamRequest(method: "POST", url: target.baseURL + settings.logoutPath,
                                                         headers: [("Accept", "application/json"), ("Cookie", session.jar.header(now: clock()) ?? "")],
                                                         idempotent: true, timeoutSeconds: settings.timeoutSeconds))
            backendNote = (200..<300).contains(response.status) || response.status == 401
                ? "The backend ended the session." : "The backend answered \(response.status) to the logout."
        } catch let e as UpstreamError {
            backendNote = "The backend could not be told (\(e.description))."
        }
        do { _ = try store.deleteBackendSession(key) } catch {
            throw ToolError("The session store is unavailable; the session was not forgotten. Try again shortly.")
        }
        Log.shared.info("backend session ended", ["backend": .string(name), "caller": .string(caller.key)])
        result["ended"] = true
        result["detail"] = .string(backendNote + " The gateway no longer holds it.")
        return result
    }

    /// What is known about the caller's session; with `verify`, asks the backend now.
    func status(_ caller: Caller, verify: Bool) throws -> JSONObject {
        let target = try target(for: caller)
        let key = try sessionKey(caller)
        var o = JSONObject(pairs: [("backend", .string(name)), ("auth_mode", .string(settings.authMode.rawValue))])
        guard var session = try storedSession(key, target) else {
            o["session"] = "none"
            return o
        }
        let now = clock()
        o["session"] = session.jar.isExpired(now: now) ? "expired" : "active"
        if let e = session.jar.expiresAt { o["expires_at"] = .string(Timestamp.iso8601(e)) }
        o["last_checked_at"] = .string(Timestamp.iso8601(session.stored.checkedAt))
        if verify && !session.jar.isExpired(now: now) {
            let valid = try check(&session, caller, target)
            o["verified"] = .bool(valid)
            if valid { try? store.markBackendSessionChecked(key, sealed: session.stored.sealed, at: now) } else { o["session"] = "rejected" }
        }
        return o
    }
}

/// Backend answers that are not success, as messages a person can act on. The backend's
/// own explanation is included only from known JSON fields, bounded and printable.
enum BackendFailure {
    static func error(_ backend: String, _ r: UpstreamResponse, action: String) -> ToolError {
        ToolError(message(backend, r, action: action), upstreamStatus: r.status)
    }

    private static func message(_ backend: String, _ r: UpstreamResponse, action: String) -> String {
        let detail = explanation(r.body).map { ": \($0)" } ?? ""
        switch r.status {
        case 401: return "The backend \(backend) refused your credentials while \(action) (401)\(detail)."
        case 403: return "The backend \(backend) denied access while \(action) (403)\(detail)."
        case 404: return "The backend \(backend) found nothing there (404)\(detail)."
        case 408, 504: return "The backend \(backend) timed out while \(action) (\(r.status))."
        case 429:
            let wait = r.retryAfterSeconds.map { "; retry in \($0) s" } ?? "; retry shortly"
            return "The backend \(backend) is limiting requests (429)\(wait)."
        case 300..<400: return "The backend \(backend) redirected the request (\(r.status)); check the tool's path."
        case 400..<500: return "The backend \(backend) rejected the request while \(action) (\(r.status))\(detail)."
        default: return "The backend \(backend) failed while \(action) (\(r.status))\(detail)."
        }
    }

    static func explanation(_ body: [UInt8]) -> String? {
        guard !body.isEmpty, body.count <= 65536,
              let doc = try? JSONParser.parse(body, limits: JSONLimits(maxDepth: 8, maxBytes: 65536)) else { return nil }
        for field in ["message", "error_description", "detail", "error", "title"] {
            let value = doc[field]?.stringValue ?? doc["error"]?[field]?.stringValue
            if let value, !value.isEmpty {
                let clean = String(String.UnicodeScalarView(value.unicodeScalars.prefix(200).map { $0.value >= 0x20 && $0.value != 0x7F ? $0 : " " }))
                return clean
            }
        }
        return nil
    }
}
