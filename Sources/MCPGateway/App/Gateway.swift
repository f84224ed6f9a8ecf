import GatewaySupport
import EntraAuth
import Foundation
import MCPJSON

/// The whole request path for one process: route, transport rules, authentication,
/// dispatch. One instance serves every worker thread.
public final class Gateway: RequestHandler, @unchecked Sendable {
    public let config: GatewayConfig
    let endpoint: MCPEndpoint
    let authenticator: Authenticator
    let identity: ServerIdentity
    let metadataPaths: Set<String>
    let developmentMode: Bool
    public let store: GatewayStore
    /// One instance of several: the unsuffixed metadata path and /me belong to no instance then.
    let sharesHost: Bool
    public let operations: OperationsStatus

    public init(config: GatewayConfig, registry: ToolRegistry, authenticator: Authenticator, store: GatewayStore,
                operations: OperationsStatus? = nil, sharesHost: Bool = false) {
        self.sharesHost = sharesHost
        self.operations = operations ?? OperationsStatus(config: config, store: store, verifier: authenticator.verifier,
            metrics: authenticator.metrics ?? GatewayMetrics(counters: nil, knownTools: []), startedAt: Date().timeIntervalSince1970)
        self.config = config
        self.authenticator = authenticator
        self.store = store
        developmentMode = config.auth.mode == .development
        identity = ServerIdentity(name: config.server.name, version: GatewayVersion.string,
                                  instructions: config.server.instructions, startedAt: Date().timeIntervalSince1970)
        let dispatcher = MCPDispatcher(registry: registry, server: identity, pageSize: config.limits.toolsPageSize)
        endpoint = MCPEndpoint(dispatcher: dispatcher, allowedOrigins: config.allowedOrigins,
                               maxJSONDepth: config.limits.maxJSONDepth, maxBodyBytes: config.limits.maxBodyBytes)
        let suffixed = "/.well-known/oauth-protected-resource" + config.server.mcpPath
        metadataPaths = sharesHost ? [suffixed] : ["/.well-known/oauth-protected-resource", suffixed]
    }

    /// The paths that belong to this instance alone.
    var ownPaths: [String] { [config.server.mcpPath] + metadataPaths }

    /// Builds the gateway the configuration describes: verifier, metadata, built-in tools.
    /// `sharesHost`: one of several instances in this process (the router knows).
    public static func make(config: GatewayConfig, extraTools: [Tool] = [], sharesHost: Bool = false) throws -> Gateway {
        let auth = config.auth
        var entra = EntraConfiguration(audiences: auth.audiences, allowedTenants: auth.allowedTenants,
                                       stateDirectory: config.stateDirectory)
        entra.authority = auth.authority
        entra.v1IssuerAuthority = auth.acceptV1Tokens ? entra.v1IssuerAuthority : nil
        entra.acceptAnyTenant = auth.acceptAnyTenant
        entra.acceptDelegatedTokens = auth.acceptDelegatedTokens
        entra.acceptAppOnlyTokens = auth.acceptAppOnlyTokens
        entra.clockSkewSeconds = Int64(auth.clockSkewSeconds)
        entra.tokenCacheCapacity = auth.tokenCacheEntries
        entra.jwksURI = auth.jwksURI
        entra.jwksRefreshIntervalSeconds = Int64(auth.jwksRefreshHours) * 3600
        entra.http.caBundlePath = auth.caBundle
        entra.http.allowInsecureHTTPForTesting = auth.allowInsecureHTTPForTesting
        entra.developmentMode = auth.mode == .development
        try StateDirectory.ensure(config.stateDirectory)
        let metrics = GatewayMetrics.open(stateDirectory: config.stateDirectory)
        if sharesHost { metrics.labelInstance(config.instanceName) }
        let verifier = try TokenVerifier(configuration: entra,
                                         http: MeteredFetcher(CurlHTTPFetcher(options: entra.http), upstream: "entra_keys", metrics: metrics))

        let issuerBase = auth.mode == .development ? DevTokenMinter.issuerAuthority : auth.authority
        let servers = (auth.allowedTenants.isEmpty ? ["organizations"] : auth.allowedTenants).map { "\(issuerBase)/\($0)/v2.0" }
        let metadata = ResourceMetadata(publicURL: config.server.publicURL, authorizationServers: servers,
                                        scopesSupported: auth.scopesSupported,
                                        resourceName: auth.resourceName ?? config.server.name)
        let store = try SQLiteStore(path: config.resolvedStorePath, durable: false)
        let registry = ToolRegistry()
        try registry.register(WhoAmITool())
        try registry.register(ServerInfoTool(developmentMode: auth.mode == .development))
        try registry.register(AuditLogTool(store: store))
        // Power BI and backend tools share the instance's client credential: its files are read once.
        let needsCredential = config.powerBI != nil || !config.backends.isEmpty
        let credential = try config.credential.flatMap { needsCredential ? try ClientCredential.load($0) : nil }
        try PowerBITools.register(into: registry, config: config, store: store, credential: credential, metrics: metrics)
        try BackendTools.register(into: registry, config: config, store: store, loadedCredential: credential, metrics: metrics)
        let operations = OperationsStatus(config: config, store: store, verifier: verifier, metrics: metrics,
                                          startedAt: Date().timeIntervalSince1970)
        try registry.register(SystemStatusTool(operations: operations))
        for tool in extraTools { try registry.register(tool) }
        metrics.knownTools = Set(registry.all.map(\.definition.name))

        return Gateway(config: config, registry: registry,
                       authenticator: Authenticator(verifier: verifier, metadata: metadata, requiredScopes: auth.requiredScopes,
                                                    policy: config.permissions, instance: config.instanceName,
                                                    tenants: config.tenants, trustedProxy: config.trustedProxy,
                                                    allowedTenants: auth.allowedTenants, acceptAnyTenant: auth.acceptAnyTenant,
                                                    metrics: metrics),
                       store: store, operations: operations, sharesHost: sharesHost)
    }

    public func respond(to incoming: HTTPRequest) -> HTTPResponse {
        // One draw from the system generator: the request id, and the audit pruning lottery.
        var generator = SystemRandomNumberGenerator()
        let draw: UInt64 = generator.next()
        let requestId = Hex.word(draw)
        var request = incoming
        authenticator.stripUntrustedAssertions(&request)
        var response: HTTPResponse
        switch request.path {
        case config.server.mcpPath: response = serveMCP(request, requestId: requestId, draw: draw)
        case "/health": response = health(request)
        case "/ready": response = ready(request)
        case "/metrics": response = metricsEndpoint(request)
        case "/me" where !sharesHost: response = me(request)
        case let p where metadataPaths.contains(p): response = resourceMetadata(request)
        default: response = HTTPResponse.error(404, "not_found", "No such endpoint: \(Gateway.printable(request.path))")
        }
        if request.path != config.server.mcpPath { operations.metrics.recordHTTPRequest(path: request.path, status: response.status) }
        response.headers.append(("X-Request-Id", requestId))
        response.headers.append(("Cache-Control", "no-store"))
        return response
    }

    // MARK: - Endpoints

    /// Serves the MCP endpoint and puts the request on the record before answering:
    /// if the audit trail cannot be written, the caller gets 503, never an unrecorded answer.
    private func serveMCP(_ request: HTTPRequest, requestId: String, draw: UInt64) -> HTTPResponse {
        let started = Date().timeIntervalSince1970
        var record = AuditRecord(time: started, requestId: requestId, instance: config.instanceName, decision: "denied",
                                 httpStatus: 0, latencyMilliseconds: 0)
        var response = decide(request, requestId: requestId, record: &record)
        record.httpStatus = response.status
        record.latencyMilliseconds = (Date().timeIntervalSince1970 - started) * 1000
        do {
            try store.appendAudit(record)
            pruneAuditOccasionally(now: started, draw: draw)
        } catch {
            Log.shared.error("audit trail unavailable; refusing", ["request_id": .string(requestId), "error": .string("\(error)")])
            response = HTTPResponse.json(503, JSONRPCMessage.errorEnvelope(id: nil, error: RPCError(RPCErrorCode.internalError,
                "The server cannot record this request right now; try again shortly")), headers: [("Retry-After", "5")])
        }
        operations.metrics.recordMCPRequest(method: record.method, tool: record.tool, status: response.status)
        return response
    }

    private func decide(_ request: HTTPRequest, requestId: String, record: inout AuditRecord) -> HTTPResponse {
        if request.method == "DELETE" && config.sessions.enabled {
            return endSession(request, record: &record)
        }
        let accepted: MCPEndpoint.Accepted
        switch endpoint.screen(request) {
        case .answered(let r):
            record.reason = "transport"
            return r
        case .accepted(let a): accepted = a
        }
        let message = accepted.message
        record.method = message.method
        if message.method == "tools/call" {
            record.tool = message.params["name"]?.stringValue
            let arguments = JSONWriter.serialize(message.params["arguments"] ?? .object(JSONObject()))
            record.argumentsDigest = SHA256Digest(arguments).hex
            if config.audit.includeArguments { record.arguments = String(decoding: arguments, as: UTF8.self) }
        }
        switch authenticator.authenticate(request) {
        case .refused(let r, let reason):
            record.reason = reason
            Log.shared.info("request refused", ["request_id": .string(requestId), "status": .integer(r.status),
                                                "reason": .string(reason), "method": .string(message.method)])
            return r
        case .authenticated(let caller, let principal):
            record.tenant = principal.tenantId
            record.user = principal.objectId
            record.clientApp = principal.clientAppId
            if let (refusal, reason) = admission(principal, tenant: caller.tenant, method: message.method, id: message.id, requestId: requestId) {
                record.reason = reason
                return refusal
            }
            let sessionKey = Gateway.sessionOwner(principal)
            let useSessions = config.sessions.enabled && accepted.era == .legacy
            if useSessions, message.method != "initialize", let sid = request.headers["mcp-session-id"] {
                // Unknown, expired and someone else's sessions all look the same: not found.
                let known = (try? store.useSession(id: sid, principal: sessionKey, now: Date().timeIntervalSince1970,
                                                   idle: Double(config.sessions.idleMinutes) * 60)) ?? false
                if !known {
                    record.reason = "session not found"
                    return HTTPResponse.json(404, JSONRPCMessage.errorEnvelope(id: message.id, error: RPCError(
                        RPCErrorCode.invalidRequest, "Session not found: initialize again without Mcp-Session-Id")))
                }
            }
            var (response, outcome) = endpoint.serve(accepted, caller: caller, requestId: requestId)
            if useSessions, message.method == "initialize", response.status == 200 {
                let sid = Gateway.newSessionId()
                do {
                    try store.createSession(id: sid, principal: sessionKey, now: Date().timeIntervalSince1970)
                    response.headers.append(("Mcp-Session-Id", sid))
                } catch {
                    // Sessions are never required: carry on statelessly.
                    Log.shared.warning("cannot store a session; answering without one", ["request_id": .string(requestId)])
                }
            }
            record.decision = "allowed"
            record.upstreamStatus = outcome?.upstreamStatus
            if let permission = outcome?.deniedPermission {
                record.decision = "denied"
                record.reason = "missing permission \(permission)"
                response = authenticator.denial(permission: permission, caller: principal, id: message.id,
                                                tool: outcome?.toolName ?? "")
                Log.shared.info("tool call denied", ["request_id": .string(requestId), "caller": .string(caller.key),
                                                     "tool": JSONValue(outcome?.toolName), "permission": .string(permission)])
            } else if let challenge = outcome?.claimsChallenge {
                record.decision = "denied"
                record.reason = "claims challenge"
                response = authenticator.claimsChallenge(challenge, id: message.id)
            } else if case .failure(let e)? = outcome?.result {
                record.reason = "error \(e.code)"
            } else if outcome?.toolFailed == true {
                record.reason = "tool error"
            }
            if Log.shared.level <= .debug {
                Log.shared.debug("mcp request", ["request_id": .string(requestId), "caller": .string(caller.key),
                                                 "method": .string(message.method), "era": .string(accepted.era.rawValue),
                                                 "tool": JSONValue(outcome?.toolName), "status": .integer(response.status)])
            }
            return response
        }
    }

    /// DELETE with an Mcp-Session-Id ends the caller's own session (legacy era, sessions on).
    private func endSession(_ request: HTTPRequest, record: inout AuditRecord) -> HTTPResponse {
        record.method = "DELETE session"
        switch authenticator.authenticate(request) {
        case .refused(let r, let reason):
            record.reason = reason
            return r
        case .authenticated(_, let p):
            record.tenant = p.tenantId
            record.user = p.objectId
            record.clientApp = p.clientAppId
            guard let sid = request.headers["mcp-session-id"] else {
                record.reason = "no session id"
                return HTTPResponse.json(400, JSONRPCMessage.errorEnvelope(id: nil, error: RPCError(RPCErrorCode.invalidRequest,
                    "DELETE ends a session: send its Mcp-Session-Id")))
            }
            let ended = (try? store.endSession(id: sid, principal: Gateway.sessionOwner(p))) ?? false
            record.decision = ended ? "allowed" : "denied"
            record.reason = ended ? nil : "session not found"
            return ended ? HTTPResponse(status: 204)
                : HTTPResponse.json(404, JSONRPCMessage.errorEnvelope(id: nil, error: RPCError(RPCErrorCode.invalidRequest, "Session not found")))
        }
    }

    /// Who a session belongs to: tenant, user and client app.
    static func sessionOwner(_ p: Principal) -> String { "\(p.tenantId)/\(p.objectId)/\(p.clientAppId ?? "")" }

    /// 256 random bits: session ids must not be guessable.
    static func newSessionId() -> String { Hex.random(words: 4) }

    /// Retention without a scheduler: about one request in a thousand prunes (`draw` is
    /// the request's random word, so no second trip to the system generator).
    private func pruneAuditOccasionally(now: Double, draw: UInt64) {
        guard (draw >> 32) % 1000 == 0 else { return }
        _ = try? store.pruneAudit(before: now - Double(config.audit.retentionDays) * 86_400)
    }

    /// Operator blocks, then the per-user and per-tenant rate limits, both from the
    /// shared store so they hold across every process. A store failure refuses (fail closed).
    private func admission(_ p: Principal, tenant: TenantRecord?, method: String, id: JSONValue?,
                           requestId: String) -> (HTTPResponse, String)? {
        let now = Date().timeIntervalSince1970
        do {
            // Ids are stored lower-cased by `mcp-fcgi block`; GUIDs compare case-insensitively.
            var keys: [(Block.Kind, String)] = [(.user, p.objectId.lowercased()), (.tenant, p.tenantId.lowercased())]
            if let app = p.clientAppId { keys.append((.clientApp, app.lowercased())) }
            if let block = try store.activeBlock(matching: keys, now: Int64(now)) {
                operations.metrics.recordBlocked()
                Log.shared.warning("request from a blocked principal refused", ["request_id": .string(requestId),
                    "block": .string(block.kind.rawValue), "id": .string(block.id), "method": .string(method)])
                let error = RPCError(RPCErrorCode.forbidden, "Access has been blocked by the operator of this server",
                                     data: ["blocked": .string(block.kind.rawValue)])
                return (HTTPResponse.json(403, JSONRPCMessage.errorEnvelope(id: id, error: error)), "blocked \(block.kind.rawValue)")
            }
            // A tenant record's own limits replace the instance's for that tenant.
            let limits = tenant?.rateLimits ?? config.rateLimits
            var buckets: [RateBucket] = []
            if limits.userPerMinute > 0 {
                buckets.append(RateBucket(key: "user:\(p.tenantId)/\(p.objectId)", perMinute: Double(limits.userPerMinute),
                                          burst: Double(limits.userBurst)))
            }
            if limits.tenantPerMinute > 0 {
                buckets.append(RateBucket(key: "tenant:\(p.tenantId)", perMinute: Double(limits.tenantPerMinute),
                                          burst: Double(limits.tenantBurst)))
            }
            if let wait = try store.take(buckets, now: now) {
                operations.metrics.recordRateLimited()
                let seconds = max(1, Int(wait.rounded(.up)))
                Log.shared.info("rate limit reached", ["request_id": .string(requestId), "caller": .string("\(p.tenantId)/\(p.objectId)"),
                                                      "retry_after": .integer(seconds)])
                let error = RPCError(RPCErrorCode.rateLimited, "Rate limit reached: retry in \(seconds) s",
                                     data: ["retryAfterSeconds": .integer(seconds)])
                return (HTTPResponse.json(429, JSONRPCMessage.errorEnvelope(id: id, error: error),
                                          headers: [("Retry-After", String(seconds))]), "rate limited")
            }
        } catch {
            Log.shared.error("shared store unavailable; refusing", ["request_id": .string(requestId), "error": .string("\(error)")])
            return (HTTPResponse.json(503, JSONRPCMessage.errorEnvelope(id: id, error: RPCError(RPCErrorCode.internalError,
                "The server's shared store is unavailable; try again shortly")), headers: [("Retry-After", "5")]), "store unavailable")
        }
        return nil
    }

    private func health(_ request: HTTPRequest) -> HTTPResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            return HTTPResponse.error(405, "method_not_allowed", "Use GET", headers: [("Allow", "GET, HEAD")])
        }
        var o = JSONObject()
        o["status"] = "ok"
        o["version"] = .string(GatewayVersion.string)
        o["uptime_seconds"] = .integer(Int(Date().timeIntervalSince1970 - identity.startedAt))
        o["development_mode"] = .bool(developmentMode)
        if developmentMode {
            o["warning"] = "development mode: only locally minted tokens are accepted; do not expose this instance"
        }
        return HTTPResponse.json(200, .object(o))
    }

    private func me(_ request: HTTPRequest) -> HTTPResponse {
        guard request.method == "GET" else {
            return HTTPResponse.error(405, "method_not_allowed", "Use GET", headers: [("Allow", "GET")])
        }
        switch authenticator.authenticate(request) {
        case .refused(let r, _): return r
        case .authenticated(let caller, _): return HTTPResponse.json(200, .object(caller.identity))
        }
    }

    private func resourceMetadata(_ request: HTTPRequest) -> HTTPResponse {
        let cors = [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "GET, OPTIONS"),
                    ("Access-Control-Allow-Headers", "Authorization, Content-Type, MCP-Protocol-Version")]
        switch request.method {
        case "GET", "HEAD": return HTTPResponse.json(200, authenticator.metadata.document, headers: cors)
        case "OPTIONS": return HTTPResponse(status: 204, headers: cors + [("Access-Control-Max-Age", "86400")])
        default: return HTTPResponse.error(405, "method_not_allowed", "Use GET", headers: [("Allow", "GET, OPTIONS")] + cors)
        }
    }

    // MARK: - Helpers

    static func newRequestId() -> String { Hex.random(words: 1) }

    /// Echo paths only as visible ASCII, bounded, so a log or body cannot be forged.
    static func printable(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.prefix(200).map { $0.value >= 0x20 && $0.value < 0x7F ? $0 : "?" }))
    }
}
