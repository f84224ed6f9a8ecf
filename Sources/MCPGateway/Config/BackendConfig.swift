import FoundationEssentials
import MCPJSON

/// One customer web backend and the tools it offers, declared in the `backends` section.
/// Adding a tool for an existing backend is configuration, not code.
public struct BackendSettings: Sendable {
    public enum AuthMode: String, Sendable, CaseIterable {
        /// An On-Behalf-Of token for `scope`, sent as a bearer token.
        case token
        /// That token presented once to `login_path`; the session cookie it sets is used after.
        case session
        /// Session for tools with `route: "web"`, token for tools with `route: "api"`.
        case hybrid
        /// A static key from a file or the environment (service-to-service backends).
        case apiKey = "api-key"
    }

    public enum APIKeySource: Sendable, Equatable {
        case file(String)
        case environment(String)
    }

    public var name: String
    /// Origin plus optional path prefix, without a trailing slash.
    public var baseURL: String
    public var authMode: AuthMode
    /// The backend's Entra resource scope for On-Behalf-Of, e.g. "api://simplechat/.default".
    public var scope: String?
    public var loginPath = "/api/login"
    public var userInfoPath = "/api/user_info"
    public var logoutPath = "/api/logout"
    /// When set, this field of the user-info answer must equal the caller's object id.
    public var userInfoIdField: String?
    /// How long a user-info check of a session stays good, shared by every process.
    public var sessionCheckSeconds = 5
    public var apiKeySource: APIKeySource?
    public var apiKeyHeader = "X-API-Key"
    public var caBundle: String?
    public var timeoutSeconds = 15.0
    public var maxResponseBytes = 1 << 20
    public var allowInsecureHTTPForTesting = false
    /// The permission needed for this backend's session tools and, unless a tool names its own, its tools.
    public var permission: String
    public var tools: [BackendToolSpec] = []

    public var usesSessions: Bool { authMode == .session || authMode == .hybrid }
    public var usesTokens: Bool { authMode != .apiKey }
}

/// One declarative tool: where its arguments go and what it needs.
public struct BackendToolSpec: Sendable {
    public enum Route: String, Sendable { case web, api }
    public enum ResponseFormat: String, Sendable { case json, text }

    public var name: String
    public var title: String?
    public var description: String
    public var inputSchema: JSONValue
    public var method: String
    public var path: PathTemplate
    public var query: [String]
    public var body: [String]
    public var permission: String
    /// Hybrid backends only: which credential the route takes.
    public var route: Route?
    public var response: ResponseFormat
    public var maxResponseBytes: Int
}

/// Settings one tenant overrides for one backend (`tenants.<id>.backends.<name>`).
public struct TenantBackendSettings: Sendable, Equatable {
    /// False keeps the backend's tools away from this tenant's users.
    public var enabled = true
    public var baseURL: String?
    public var scope: String?

    public init(enabled: Bool = true, baseURL: String? = nil, scope: String? = nil) {
        self.enabled = enabled
        self.baseURL = baseURL
        self.scope = scope
    }
}

enum BackendConfig {
    static let methods: Set<String> = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    static let bodyMethods: Set<String> = ["POST", "PUT", "PATCH"]

    /// Parses `backends`; `permissions` is the instance's policy, so a tool nobody could call is an error.
    /// A backend tool may not shadow a built-in one, nor a Power BI tool when `powerBI` is configured.
    static func parse(_ top: ConfigSection, permissions: PermissionPolicy, credential: Bool,
                      powerBI: Bool) -> ([String: BackendSettings], [ConfigError]) {
        guard let raw = top.json("backends") else { return ([:], []) }
        guard let entries = raw.objectValue else { return ([:], [ConfigError("backends", "must be an object of backends by name")]) }
        var errors: [ConfigError] = []
        var backends: [String: BackendSettings] = [:]
        var toolOwners: [String: String] = [:]
        for (name, value) in entries {
            let path = "backends.\(name)"
            guard isValidName(name) else {
                errors.append(ConfigError(path, "backend names are 1-32 characters of a-z 0-9 _ -")); continue
            }
            guard let object = value.objectValue else { errors.append(ConfigError(path, "must be an object")); continue }
            let section = ConfigSection(object, path: path)
            let backend = parseBackend(name, section, permissions: permissions, powerBI: powerBI)
            for tool in backend.tools {
                if let owner = toolOwners[tool.name] {
                    section.fail("tools", "tool name '\(tool.name)' is already used by backend \(owner)")
                }
                toolOwners[tool.name] = name
            }
            if backend.usesTokens && !credential {
                section.fail("auth_mode", "\(backend.authMode.rawValue) needs On-Behalf-Of tokens: configure the server's credential section")
            }
            errors += section.finish()
            backends[name] = backend
        }
        return (backends, errors)
    }

    private static func parseBackend(_ name: String, _ s: ConfigSection, permissions: PermissionPolicy, powerBI: Bool) -> BackendSettings {
        let modeName = s.string("auth_mode") ?? ""
        let mode = BackendSettings.AuthMode(rawValue: modeName)
        if mode == nil {
            s.fail("auth_mode", "must be one of \(BackendSettings.AuthMode.allCases.map { $0.rawValue }.joined(separator: ", "))")
        }
        var b = BackendSettings(name: name, baseURL: "", authMode: mode ?? .token, permission: "")
        b.allowInsecureHTTPForTesting = s.bool("allow_insecure_http_for_testing", default: false)
        if let url = s.string("base_url") {
            if let problem = baseURLProblem(url, allowInsecure: b.allowInsecureHTTPForTesting) { s.fail("base_url", problem) }
            b.baseURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        } else {
            s.fail("base_url", "is required: the backend's https URL, e.g. https://chat.contoso.com")
        }
        b.scope = s.string("scope")
        if b.usesTokens && (b.scope ?? "").isEmpty {
            s.fail("scope", "is required for auth_mode \(b.authMode.rawValue): the backend's Entra scope, e.g. api://<backend app id>/.default")
        }
        for (key, keyPath) in [("login_path", \BackendSettings.loginPath), ("user_info_path", \.userInfoPath), ("logout_path", \.logoutPath)] {
            guard let p = s.string(key) else { continue }
            if !b.usesSessions { s.fail(key, "applies only to auth_mode session or hybrid"); continue }
            do { _ = try PathTemplate(p); b[keyPath: keyPath] = p } catch { s.fail(key, "\(error)") }
            if p.contains("{") { s.fail(key, "must be a fixed path without placeholders") }
        }
        b.userInfoIdField = s.string("user_info_id_field")
        b.sessionCheckSeconds = s.int("session_check_seconds", default: b.sessionCheckSeconds, range: 0...300)
        for key in ["user_info_id_field", "session_check_seconds"] where !b.usesSessions && !(s.raw[key]?.isNull ?? true) {
            s.fail(key, "applies only to auth_mode session or hybrid")
        }
        let keyFile = s.string("api_key_file"), keyEnv = s.string("api_key_env")
        switch (b.authMode, keyFile, keyEnv) {
        case (.apiKey, let f?, nil):
            if !f.hasPrefix("/") { s.fail("api_key_file", "must be an absolute path") }
            b.apiKeySource = .file(f)
        case (.apiKey, nil, let e?):
            if e.isEmpty { s.fail("api_key_env", "must name an environment variable") }
            b.apiKeySource = .environment(e)
        case (.apiKey, _?, _?): s.fail("api_key_file", "give api_key_file or api_key_env, not both")
        case (.apiKey, nil, nil): s.fail("api_key_file", "auth_mode api-key needs api_key_file or api_key_env")
        case (_, nil, nil): break
        default: s.fail(keyFile != nil ? "api_key_file" : "api_key_env", "applies only to auth_mode api-key")
        }
        if let header = s.string("api_key_header") {
            if !isHeaderName(header) { s.fail("api_key_header", "must be an HTTP header name") }
            if ["authorization", "cookie", "host", "content-length"].contains(header.lowercased()) {
                s.fail("api_key_header", "must not be \(header): the gateway sets that header itself")
            }
            b.apiKeyHeader = header
        }
        b.caBundle = s.string("ca_bundle")
        if let ca = b.caBundle, !ca.hasPrefix("/") { s.fail("ca_bundle", "must be an absolute path to a PEM bundle") }
        b.timeoutSeconds = Double(s.int("timeout_seconds", default: 15, range: 1...300))
        b.maxResponseBytes = s.int("max_response_bytes", default: b.maxResponseBytes, range: 1024...(64 << 20))
        b.permission = s.string("permission") ?? ""
        if b.permission.isEmpty {
            s.fail("permission", "is required: the permission (granted by a role or scope under authorization) a caller needs for this backend")
        } else if let problem = ungranted(b.permission, permissions) {
            s.fail("permission", problem)
        }
        if let list = s.json("tools") {
            if let items = list.arrayValue {
                var seen: Set<String> = []
                for (i, item) in items.enumerated() {
                    let path = "\(s.path).tools[\(i)]"
                    guard let o = item.objectValue else { s.fail("tools[\(i)]", "must be an object"); continue }
                    let ts = ConfigSection(o, path: path)
                    if let tool = parseTool(ts, backend: b, permissions: permissions, powerBI: powerBI) {
                        if !seen.insert(tool.name).inserted { ts.fail("name", "'\(tool.name)' appears twice") }
                        b.tools.append(tool)
                    }
                    for e in ts.finish() { s.fail("tools[\(i)]\(e.path.dropFirst(path.count))", e.problem) }
                }
            } else {
                s.fail("tools", "must be a list of tool definitions")
            }
        }
        return b
    }

    private static func parseTool(_ t: ConfigSection, backend b: BackendSettings, permissions: PermissionPolicy,
                                  powerBI: Bool) -> BackendToolSpec? {
        let name = t.string("name") ?? ""
        if !ToolRegistry.isValidName(name) { t.fail("name", "is required: 1-64 characters of A-Z a-z 0-9 _ . -") }
        if BuiltInTools.reservedNames.contains(name) { t.fail("name", "'\(name)' is a built-in tool of this server") }
        if powerBI && BuiltInTools.powerBINames.contains(name) {
            t.fail("name", "'\(name)' is a Power BI tool of this server (the powerbi section is configured)")
        }
        let description = t.string("description") ?? ""
        if description.isEmpty { t.fail("description", "is required: it tells the model what the tool does") }
        let method = (t.string("method") ?? "GET").uppercased()
        if !methods.contains(method) { t.fail("method", "must be one of \(methods.sorted().joined(separator: ", "))") }

        var template: PathTemplate?
        if let p = t.string("path") {
            do { template = try PathTemplate(p) } catch { t.fail("path", "\(error)") }
        } else {
            t.fail("path", "is required, e.g. /api/conversations/{conversation_id}")
        }

        var schema = t.json("input_schema") ?? ToolDefinition.noArguments
        var properties = JSONObject()
        if var o = schema.objectValue {
            if o["type"] != "object" { t.fail("input_schema", "must have \"type\": \"object\"") }
            if let p = o["properties"] {
                if let po = p.objectValue { properties = po } else { t.fail("input_schema.properties", "must be an object") }
            }
            if let extra = o["additionalProperties"], extra != .bool(false) {
                t.fail("input_schema.additionalProperties", "must be false: every argument must have a place in the request")
            }
            o["additionalProperties"] = .bool(false)
            schema = .object(o)
        } else {
            t.fail("input_schema", "must be a JSON Schema object")
        }
        let required = Set(schema["required"]?.arrayValue?.compactMap { $0.stringValue } ?? [])
        let query = t.strings("query") ?? []
        let body = t.strings("body") ?? []
        if !body.isEmpty && !bodyMethods.contains(method) { t.fail("body", "a \(method) request carries no body; use query or path") }

        var placed: [String: String] = [:]
        func place(_ argument: String, _ where_: String, types allowed: Set<String>) {
            if let other = placed[argument] { t.fail(where_, "argument '\(argument)' is already sent in \(other)"); return }
            placed[argument] = where_
            guard let property = properties[argument] else {
                t.fail(where_, "argument '\(argument)' is not in input_schema.properties"); return
            }
            let types = property["type"]?.stringValue.map { [$0] } ?? property["type"]?.arrayValue?.compactMap { $0.stringValue } ?? []
            if types.isEmpty || !types.allSatisfy(allowed.contains) {
                t.fail(where_, "argument '\(argument)' must have a \"type\" of \(allowed.sorted().joined(separator: ", "))")
            }
            if types == ["array"], let itemType = property["items"]?["type"]?.stringValue,
               !["string", "integer", "number", "boolean"].contains(itemType) {
                t.fail(where_, "argument '\(argument)' must be a list of strings, numbers or booleans")
            }
        }
        for p in template?.placeholders ?? [] {
            place(p, "path", types: ["string", "integer"])
            if !required.contains(p) { t.fail("input_schema.required", "must list '\(p)': a path segment cannot be left out") }
        }
        for q in query { place(q, "query", types: ["string", "integer", "number", "boolean", "array"]) }
        for a in body { place(a, "body", types: ["string", "integer", "number", "boolean", "array", "object", "null"]) }
        for (name, _) in properties where placed[name] == nil {
            t.fail("input_schema.properties.\(name)", "is not sent anywhere: name it in the path, query or body")
        }

        let permission = t.string("permission") ?? b.permission
        if t.string("permission") != nil, let problem = ungranted(permission, permissions) { t.fail("permission", problem) }

        var route: BackendToolSpec.Route?
        if let r = t.string("route") {
            route = BackendToolSpec.Route(rawValue: r)
            if route == nil { t.fail("route", "must be \"web\" (session) or \"api\" (token)") }
            if b.authMode != .hybrid { t.fail("route", "applies only to auth_mode hybrid") }
        } else if b.authMode == .hybrid {
            t.fail("route", "is required for a hybrid backend: \"web\" uses the session, \"api\" the token")
        }
        let responseName = t.string("response") ?? "json"
        let response = BackendToolSpec.ResponseFormat(rawValue: responseName)
        if response == nil { t.fail("response", "must be \"json\" or \"text\"") }
        let cap = t.int("max_response_bytes", default: b.maxResponseBytes, range: 1024...(64 << 20))
        if cap > b.maxResponseBytes { t.fail("max_response_bytes", "must not exceed the backend's max_response_bytes (\(b.maxResponseBytes))") }

        guard let template, let response else { return nil }
        return BackendToolSpec(name: name, title: t.string("title"), description: description, inputSchema: schema,
                               method: method, path: template, query: query, body: body, permission: permission,
                               route: route, response: response, maxResponseBytes: cap)
    }

    /// Per-tenant overrides: `{"<backend>": {"enabled": …, "base_url": …, "scope": …}}`.
    static func parseTenantOverrides(_ raw: JSONValue?, path: String, backends: [String: BackendSettings])
        -> ([String: TenantBackendSettings]?, [ConfigError]) {
        guard let raw, !raw.isNull else { return (nil, []) }
        guard let entries = raw.objectValue else { return (nil, [ConfigError(path, "must be an object of backend settings by backend name")]) }
        var errors: [ConfigError] = []
        var out: [String: TenantBackendSettings] = [:]
        for (name, value) in entries {
            let at = "\(path).\(name)"
            guard let backend = backends[name] else {
                errors.append(ConfigError(at, "no backend named '\(name)' under backends")); continue
            }
            guard let o = value.objectValue else { errors.append(ConfigError(at, "must be an object")); continue }
            let s = ConfigSection(o, path: at)
            var t = TenantBackendSettings()
            t.enabled = s.bool("enabled", default: true)
            if let url = s.string("base_url") {
                if let problem = baseURLProblem(url, allowInsecure: backend.allowInsecureHTTPForTesting) { s.fail("base_url", problem) }
                t.baseURL = url.hasSuffix("/") ? String(url.dropLast()) : url
            }
            t.scope = s.string("scope")
            if t.scope != nil && !backend.usesTokens { s.fail("scope", "backend \(name) uses an API key, not tokens") }
            if t.baseURL != nil && backend.usesTokens && (t.scope ?? "").isEmpty {
                s.fail("scope", "is required with base_url for auth_mode \(backend.authMode.rawValue): the tenant host's own Entra scope (api://<its app id>/.default); the backend's scope would give that host tokens for the shared backend")
            }
            errors += s.finish()
            out[name] = t
        }
        return (out, errors)
    }

    static func baseURLProblem(_ url: String, allowInsecure: Bool) -> String? {
        guard let u = URLComponents(string: url), let scheme = u.scheme?.lowercased(), let host = u.host, !host.isEmpty,
              u.query == nil, u.fragment == nil, u.user == nil, u.password == nil else {
            return "must be an absolute URL without user, query or fragment, e.g. https://chat.contoso.com"
        }
        if scheme == "https" { return nil }
        if scheme == "http" && allowInsecure { return nil }
        return "must be an https URL (plain http only with allow_insecure_http_for_testing)"
    }

    private static func ungranted(_ permission: String, _ policy: PermissionPolicy) -> String? {
        if policy.roles(granting: permission).isEmpty && policy.scopes(granting: permission).isEmpty {
            return "no role or scope under authorization grants '\(permission)', so nobody could call this"
        }
        return nil
    }

    static func isValidName(_ s: String) -> Bool {
        (1...32).contains(s.utf8.count) && s.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x7A) || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
        }
    }

    static func isHeaderName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 64 && s.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
        }
    }
}
