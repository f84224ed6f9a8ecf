import EntraAuth
import Foundation
import MCPJSON
@testable import MCPGateway
import UpstreamHTTP

/// An in-process stand-in for a SimpleChat-like backend behind the HTTPClient seam:
/// login with a bearer token from `FakeTokenBroker`, cookie sessions, user info,
/// per-user conversations, logout, expiry, and switches for failures.
final class FakeBackendClient: HTTPClient, @unchecked Sendable {
    struct Seen { let method: String; let url: String; let headers: [(String, String)]; let body: [UInt8] }

    private let lock = NSLock()
    private var sessions: [String: String] = [:]     // session id -> user
    private(set) var requests: [Seen] = []
    var sessionMaxAge: Int? = 3600
    var down = false
    var loginStatus = 200
    var setCookieOnLogin = true
    var rotateCookieOnUserInfo = false
    var userInfoOverride: String?                     // report this user instead of the real one
    var answer: (status: Int, body: String)?         // replaces tool answers while set
    var answerBytes: [UInt8]?                         // a 200 with exactly these bytes for unrouted paths while set
    var apiKey = "k-123"

    func send(_ r: UpstreamRequest) throws -> UpstreamResponse {
        lock.lock()
        defer { lock.unlock() }
        requests.append(Seen(method: r.method, url: r.url, headers: r.headers, body: r.body))
        if down { throw UpstreamError.connect(host: "backend.test", detail: "connection refused") }
        guard let u = URLComponents(string: r.url) else { throw UpstreamError.invalidURL(r.url) }
        let header = { (n: String) in r.headers.first { $0.0.lowercased() == n.lowercased() }?.1 }
        let user = header("cookie").flatMap(sessionUser)
        switch (r.method, u.percentEncodedPath) {
        case ("POST", "/api/login"):
            guard loginStatus == 200 else { return json(loginStatus, #"{"error":"login refused"}"#) }
            guard let bearer = header("authorization"), bearer.hasPrefix("Bearer "),
                  let who = FakeTokenBroker.user(fromToken: String(bearer.dropFirst(7)), scope: "api://chat/.default")
            else { return json(401, #"{"error":"bad token"}"#) }
            let sid = UUID().uuidString
            sessions[sid] = who
            guard setCookieOnLogin else { return json(200, #"{"ok":true}"#) }
            let age = sessionMaxAge.map { "; Max-Age=\($0)" } ?? ""
            return json(200, #"{"ok":true}"#, cookies: ["session=\(sid)\(age); Path=/; HttpOnly; Secure"])
        case ("GET", "/api/user_info"):
            guard let user else { return json(401, #"{"error":"not signed in"}"#) }
            var cookies: [String] = []
            if rotateCookieOnUserInfo, let old = header("cookie").flatMap(sessionId) {
                let sid = UUID().uuidString
                sessions[sid] = user
                sessions[old] = nil
                cookies = ["session=\(sid); Max-Age=3600"]
            }
            return json(200, #"{"user_id":"\#(userInfoOverride ?? user)"}"#, cookies: cookies)
        case ("POST", "/api/logout"):
            if let sid = header("cookie").flatMap(sessionId) { sessions[sid] = nil }
            return json(200, #"{"ok":true}"#)
        case ("GET", "/api/conversations"):
            if let a = answer { return json(a.status, a.body) }
            guard let user else { return json(401, #"{"error":"not signed in"}"#) }
            return json(200, #"{"user":"\#(user)","conversations":[{"id":"c-\#(user)"}]}"#)
        case ("GET", "/v1/items"), ("POST", "/v1/items"):
            let authorized = header("authorization").flatMap { FakeTokenBroker.user(fromToken: String($0.dropFirst(7)), scope: "api://chat/.default") }
            let keyed = header("x-api-key") == apiKey
            guard authorized != nil || keyed else { return json(401, #"{"error":"no credential"}"#) }
            return json(200, #"[{"id":1,"by":"\#(authorized ?? "service")"}]"#)
        default:
            if let b = answerBytes { return UpstreamResponse(status: 200, body: b) }
            if let a = answer { return json(a.status, a.body) }
            return json(404, #"{"message":"no route \#(u.percentEncodedPath)"}"#)
        }
    }

    private func sessionId(_ cookie: String) -> String? {
        cookie.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            .first { $0.hasPrefix("session=") }.map { String($0.dropFirst(8)) }
    }

    private func sessionUser(_ cookie: String) -> String? { sessionId(cookie).flatMap { sessions[$0] } }

    func expireAllSessions() { lock.lock(); sessions.removeAll(); lock.unlock() }

    var liveSessions: Int { lock.lock(); defer { lock.unlock() }; return sessions.count }

    func paths() -> [String] {
        lock.lock(); defer { lock.unlock() }
        return requests.map { "\($0.method) \(URLComponents(string: $0.url)?.percentEncodedPath ?? $0.url)" }
    }

    func clear() { lock.lock(); requests.removeAll(); lock.unlock() }

    private func json(_ status: Int, _ body: String, cookies: [String] = []) -> UpstreamResponse {
        UpstreamResponse(status: status, headers: [("content-type", "application/json")] + cookies.map { ("set-cookie", $0) },
                         body: Array(body.utf8))
    }
}

/// Hands out recognisable tokens "obo:<scope>:<tid>/<oid>:<n>" and records what it was asked.
final class FakeTokenBroker: TokenBroker, @unchecked Sendable {
    private let lock = NSLock()
    private(set) var requests: [TokenRequest] = []
    var failure: TokenBrokerError?

    func token(_ request: TokenRequest) throws -> BrokeredToken {
        lock.lock()
        defer { lock.unlock() }
        requests.append(request)
        if let failure { throw failure }
        guard case .onBehalfOf(_, let userKey) = request.grant else { throw TokenBrokerError.delegatedAccessNeedsUser }
        return BrokeredToken(accessToken: "obo:\(request.scopes.joined(separator: " ")):\(userKey):\(requests.count)",
                             expiresAt: Date().timeIntervalSince1970 + 3600)
    }

    static func user(fromToken t: String, scope: String) -> String? {
        let parts = t.split(separator: ":", omittingEmptySubsequences: false)
        // "obo" ":" "api" ":" "//chat/.default" ":" "tid/oid" ":" n
        guard parts.count == 5, parts[0] == "obo", "\(parts[1]):\(parts[2])" == scope else { return nil }
        return parts[3].split(separator: "/").last.map(String.init)
    }
}

enum Callers {
    static let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    static let alice = "11111111-1111-4111-8111-111111111111"
    static let bob = "22222222-2222-4222-8222-222222222222"

    static func make(_ oid: String, tenant: String = Callers.tenant, permissions: Set<String> = ["chat"], appOnly: Bool = false,
                     record: TenantRecord? = nil, instance: String = "default") -> Caller {
        let p = Principal(tenantId: tenant, objectId: oid, subject: oid, issuer: "https://login.example/\(tenant)/v2.0",
                          clientAppId: "cccccccc-cccc-4ccc-8ccc-cccccccccccc", scopes: ["mcp.tools"], roles: [], groups: nil,
                          tokenVersion: "2.0", isAppOnly: appOnly, expiresAt: 2_000_000_000, displayName: nil, userPrincipalName: nil)
        return Caller(key: "\(tenant)/\(oid)", permissions: permissions, tenantId: tenant, principal: p,
                      bearerToken: "incoming-token-of-\(oid)", instance: instance, tenant: record, identity: { JSONObject() })
    }

    static func context(_ caller: Caller) -> ToolContext {
        ToolContext(caller: caller, requestId: "r1", protocolVersion: "2026-07-28", era: .modern,
                    server: ServerIdentity(name: "t", version: "0", instructions: nil, startedAt: 0))
    }
}
