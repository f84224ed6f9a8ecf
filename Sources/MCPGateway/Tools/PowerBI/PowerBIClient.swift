import EntraAuth
import FoundationEssentials
import GatewayStore
import MCPJSON
import UpstreamHTTP

/// What every Power BI tool shares: how a caller reaches Power BI (delegated or service
/// principal), which workspaces they may touch, the upstream call and its error wording.
public final class PowerBIClient: @unchecked Sendable {
    let config: PowerBIConfig
    let http: HTTPClient
    let broker: TokenBroker
    let store: WorkspaceMappingStore

    public init(config: PowerBIConfig, http: HTTPClient, broker: TokenBroker, store: WorkspaceMappingStore) {
        self.config = config
        self.http = http
        self.broker = broker
        self.store = store
    }

    /// How one caller reaches Power BI for the request at hand.
    struct Access {
        let mode: PowerBIAccessMode
        let tenantId: String
        /// The workspaces the caller may use; nil means Power BI decides (delegated, no tenant list).
        let allowedWorkspaces: Set<String>?
        let grant: TokenRequest.Grant
        /// The client answers claims challenges (`xms_cc` contains `cp1`).
        var clientAnswersClaims = false
        /// The token could not list all the caller's groups, so group mappings may be missing.
        var groupsOverflowed = false
    }

    /// Settles mode and allowed workspaces before anything leaves the process (deny by default).
    func access(for caller: Caller) throws -> Access {
        guard let p = caller.principal, let tenantId = caller.tenantId ?? caller.principal?.tenantId else {
            throw ToolError("Power BI tools need a verified caller")
        }
        let tenantSettings = caller.tenant?.powerBI
        let mode = tenantSettings?.accessMode ?? config.accessMode
        switch mode {
        case .delegated:
            if !p.isEntra {
                throw ToolError("Power BI in delegated mode acts On-Behalf-Of an Entra user, and you signed in with \(p.provider): "
                    + "only Entra users can use it here; other sign-ins need the tenant in service-principal mode with workspace mappings")
            }
            if p.isAppOnly { throw ToolError(TokenBrokerError.delegatedAccessNeedsUser.description + " (Power BI is in delegated mode here)") }
            guard let token = caller.bearerToken else { throw ToolError("Power BI tools in delegated mode need the caller's access token") }
            return Access(mode: mode, tenantId: tenantId, allowedWorkspaces: tenantSettings?.workspaces,
                          grant: .onBehalfOf(userAssertion: token, userKey: "\(tenantId.lowercased())/\(p.objectId.lowercased())"),
                          clientAnswersClaims: p.clientCapabilities.contains("cp1"))
        case .servicePrincipal:
            let mapped: Set<String>
            do {
                mapped = try store.workspaces(tenant: tenantId.lowercased(), user: Principal.canonicalUserID(p.objectId),
                                              groups: (p.groups ?? []).map { $0.lowercased() })
            } catch {
                throw ToolError("The workspace mapping cannot be read right now; try again shortly.")
            }
            let allowed = tenantSettings?.workspaces.map { mapped.intersection($0) } ?? mapped
            return Access(mode: mode, tenantId: tenantId, allowedWorkspaces: allowed, grant: .clientCredentials,
                          groupsOverflowed: p.groupsOverflowed)
        }
    }

    /// A workspace id the caller named: a GUID, and one they may use. Checked before any upstream call.
    func checkWorkspace(_ id: String, _ access: Access) throws -> String {
        let w = try Self.guid(id, "workspace_id")
        if let allowed = access.allowedWorkspaces, !allowed.contains(w) {
            let overflow = access.groupsOverflowed
                ? " (you are in more groups than your sign-in token can list, so only mappings to you personally apply)" : ""
            throw ToolError(access.mode == .servicePrincipal
                ? "Workspace \(w) is not mapped to you on this server\(overflow); ask its operator to map it (mcp-fcgi mapping add)"
                : "Workspace \(w) is not available to your organisation on this server")
        }
        return w
    }

    /// The caller's access, and the workspace and dataset a tool names: both checked before
    /// anything leaves the process (the workspace against the caller's allowed ones).
    func datasetTarget(_ arguments: JSONObject, caller: Caller) throws -> (Access, workspace: String, dataset: String) {
        let access = try access(for: caller)
        let workspace = try checkWorkspace(arguments["workspace_id"]?.stringValue ?? "", access)
        let dataset = try Self.guid(arguments["dataset_id"]?.stringValue ?? "", "dataset_id")
        return (access, workspace, dataset)
    }

    static func guid(_ value: String, _ name: String) throws -> String {
        guard IssuerTenantCheck.isGUID(value) else { throw ToolError("\(name) must be a GUID such as 00000000-0000-0000-0000-000000000000") }
        return value.lowercased()
    }

    // MARK: - Upstream

    /// The permission or tenant setting a refusal most likely points at, per operation.
    struct Operation {
        let what: String
        let delegatedNeeds: String
        var servicePrincipalNeeds = "this server's app must be a Member or Admin of the workspace, and the Power BI tenant setting \"Allow service principals to use Power BI APIs\" must include it"
    }

    /// Calls Power BI with a brokered token and returns the parsed JSON (nil for empty bodies).
    func call(_ access: Access, method: String = "GET", path: String, body: JSONValue? = nil, idempotent: Bool? = nil,
              operation: Operation) throws -> (JSONValue?, UpstreamResponse) {
        let token: BrokeredToken
        do {
            token = try broker.token(TokenRequest(tenantId: access.tenantId, scopes: [config.scope], grant: access.grant))
        } catch let e as TokenBrokerError {
            throw toolError(e, access: access)
        }
        var headers = [("Authorization", "Bearer " + token.accessToken), ("Accept", "application/json")]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        let response: UpstreamResponse
        do {
            response = try http.send(UpstreamRequest(method: method, url: config.apiBase + path, headers: headers,
                                                     body: body.map { JSONWriter.serialize($0) } ?? [],
                                                     idempotent: idempotent, timeoutSeconds: Double(config.timeoutSeconds)))
        } catch let e as UpstreamError {
            switch e {
            case .timeout: throw ToolError("Power BI did not answer within \(config.timeoutSeconds) s while \(operation.what); try again later")
            case .responseTooLarge: throw ToolError("Power BI's answer while \(operation.what) is larger than this server accepts (\(config.maxResponseBytes) bytes); narrow the request")
            default: throw ToolError("Power BI cannot be reached while \(operation.what): \(e)")
            }
        }
        let json = Self.parse(response.body)
        guard (200...299).contains(response.status) else {
            throw upstreamError(response, json: json, access: access, operation: operation)
        }
        // A success whose body does not parse (a proxy's HTML page, an answer cut short) says nothing reliable.
        if json == nil && !response.body.isEmpty { throw malformed(response, "JSON (or is cut short)", operation: operation) }
        return (json, response)
    }

    /// GETs an OData collection and keeps the listed fields of each item. A success without the
    /// documented `value` array of objects is refused: it must never read as an empty list.
    func list(_ access: Access, path: String, fields: [String], operation: Operation) throws -> [JSONValue] {
        let (json, response) = try call(access, path: path, operation: operation)
        guard let items = json?["value"]?.arrayValue else {
            throw malformed(response, "a list (it has no \"value\" array)", operation: operation)
        }
        let objects = items.compactMap(\.objectValue)
        guard objects.count == items.count else {
            throw malformed(response, "a list of objects (its \"value\" array holds other values)", operation: operation)
        }
        return objects.map { o in
            var out = JSONObject()
            for f in fields { if let v = o[f], !v.isNull { out[f] = v } }
            return .object(out)
        }
    }

    /// A 2xx answer that is not what the API documents, as a tool error naming what was expected.
    func malformed(_ r: UpstreamResponse, _ expected: String, operation: Operation) -> ToolError {
        ToolError("Power BI answered \(r.status) with a body that is not \(expected) while \(operation.what); nothing was read from it, try again later",
                  upstreamStatus: r.status)
    }

    /// JSON with a leading UTF-8 byte-order mark tolerated (executeQueries sends one at times).
    static func parse(_ body: [UInt8]) -> JSONValue? {
        guard !body.isEmpty else { return nil }
        let bytes = body.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(body.dropFirst(3)) : body
        return try? JSONParser.parse(bytes, limits: JSONLimits(maxDepth: 64, maxBytes: max(bytes.count, 1), maxStringBytes: 16 << 20))
    }

    func upstreamError(_ r: UpstreamResponse, json: JSONValue?, access: Access, operation: Operation) -> ToolError {
        let detail = Self.errorDetail(json).map { " (\($0))" } ?? ""
        switch r.status {
        case 401, 403:
            let needs = access.mode == .delegated ? operation.delegatedNeeds : operation.servicePrincipalNeeds
            return ToolError("Power BI refused \(operation.what) (HTTP \(r.status))\(detail): \(needs)", upstreamStatus: r.status)
        case 404:
            return ToolError("Not found while \(operation.what)\(detail): check the ids, and that you can see the item in Power BI", upstreamStatus: r.status)
        case 429:
            let wait = r.retryAfterSeconds.map { "retry in \($0) s" } ?? "retry in a minute"
            return ToolError("Power BI is throttling requests while \(operation.what)\(detail): \(wait)", upstreamStatus: r.status)
        case 400:
            return ToolError("Power BI rejected the request while \(operation.what)\(detail)", upstreamStatus: r.status)
        case 500...599:
            return ToolError("Power BI failed while \(operation.what) (HTTP \(r.status))\(detail); try again later", upstreamStatus: r.status)
        default:
            return ToolError("Power BI answered HTTP \(r.status) while \(operation.what)\(detail)", upstreamStatus: r.status)
        }
    }

    /// `error.code` and the most specific message Power BI gave, bounded and on one line.
    static func errorDetail(_ json: JSONValue?) -> String? {
        guard let e = json?["error"] else { return nil }
        var parts: [String] = []
        if let code = e["code"]?.stringValue { parts.append(code) }
        if let m = e["message"]?.stringValue { parts.append(m) }
        for d in e["pbi.error"]?["details"]?.arrayValue ?? [] {
            if let v = d["detail"]?["value"]?.stringValue { parts.append(v) }
        }
        guard !parts.isEmpty else { return nil }
        let text = parts.joined(separator: ": ").split(whereSeparator: \.isNewline).joined(separator: " ")
        return text.count > 400 ? String(text.prefix(400)) + "…" : text
    }

    func toolError(_ e: TokenBrokerError, access: Access) -> Error {
        switch e {
        case .interactionRequired(let claims, let detail):
            if let claims, access.clientAnswersClaims {
                return ClaimsChallenge(claims: claims, message: "Sign in again: Entra ID requires more (\(detail))")
            }
            return ToolError("Entra ID needs you to sign in again with additional verification before Power BI can be used (\(detail)); your client cannot answer a claims challenge, so sign out and in again")
        case .consentRequired(let scopes, let detail):
            return ToolError("An administrator of your organisation must grant this server's app consent for Power BI (\(scopes.joined(separator: " "))), e.g. in Entra ID > Enterprise applications > Permissions > Grant admin consent. Entra said: \(detail)")
        default:
            return ToolError(e.description)
        }
    }
}
