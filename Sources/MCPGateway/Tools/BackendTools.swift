import FoundationEssentials
import GatewayStore
import GatewaySupport
import MCPJSON
import UpstreamHTTP

/// The tools the `backends` section declares, plus `backend_login`, `backend_logout` and
/// `backend_session_status` when a backend uses sessions.
public enum BackendTools {
    /// Builds one connector per backend and every tool. `makeHTTPClient` gives each backend
    /// its own client (CA bundle, timeout, plain http only for test rigs).
    public static func make(config: GatewayConfig, store: BackendSessionStore, broker: TokenBroker?,
                            environment: [String: String] = ProcessInfo.processInfo.environment,
                            clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
                            makeHTTPClient: (BackendSettings) throws -> HTTPClient) throws -> [Tool] {
        guard !config.backends.isEmpty else { return [] }
        let needsSessions = config.backends.values.contains { $0.usesSessions }
        let cipher = needsSessions ? try SessionCipher.loadOrCreate(stateDirectory: config.stateDirectory) : nil
        var tools: [Tool] = []
        var sessionBackends: [BackendConnector] = []
        for settings in config.backends.values.sorted(by: { $0.name < $1.name }) {
            if settings.usesTokens && broker == nil {
                throw ConfigErrors([ConfigError("backends.\(settings.name).auth_mode",
                    "\(settings.authMode.rawValue) needs On-Behalf-Of tokens: configure the server's client credential")])
            }
            let connector = BackendConnector(settings: settings, http: try makeHTTPClient(settings), broker: broker, store: store,
                                             cipher: cipher, apiKey: try apiKey(settings, environment), clock: clock)
            tools += settings.tools.map { BackendTool(spec: $0, connector: connector) }
            if settings.usesSessions { sessionBackends.append(connector) }
        }
        if !sessionBackends.isEmpty {
            tools += BackendSessionTool.Kind.allCases.map { BackendSessionTool(kind: $0, backends: sessionBackends) }
        }
        return tools
    }

    /// The process's wiring: libcurl clients (TLS always verified, the backend's CA bundle and
    /// timeout, no automatic retries so a down backend fails within its timeout) and the
    /// instance's token broker (built once by the gateway, shared with the Power BI tools),
    /// which asks `credential.authority`, else `auth.authority`.
    public static func register(into registry: ToolRegistry, config: GatewayConfig, store: BackendSessionStore,
                                broker: EntraTokenBroker?, metrics: GatewayMetrics? = nil) throws {
        guard !config.backends.isEmpty else { return }
        let tools = try make(config: config, store: store, broker: broker) { settings in
            var options = CurlHTTPClientOptions.gateway
            options.connectTimeoutSeconds = min(5, settings.timeoutSeconds)
            options.totalTimeoutSeconds = settings.timeoutSeconds
            options.maxResponseBytes = settings.maxResponseBytes
            options.caBundlePath = settings.caBundle
            options.allowInsecureHTTPForTesting = settings.allowInsecureHTTPForTesting
            options.maxRetries = 0
            return MeteredHTTPClient.wrap(CurlHTTPClient(options: options), upstream: "backend_" + settings.name, metrics: metrics)
        }
        for tool in tools { try registry.register(tool) }
    }

    /// The static key of an api-key backend, read once at start; it must fit in a header.
    static func apiKey(_ s: BackendSettings, _ environment: [String: String]) throws -> String? {
        let where_: String
        let raw: String?
        switch s.apiKeySource {
        case nil: return nil
        case .file(let path)?:
            where_ = "backends.\(s.name).api_key_file"
            raw = FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
            if raw == nil { throw ConfigErrors([ConfigError(where_, "cannot read \(path)")]) }
        case .environment(let name)?:
            where_ = "backends.\(s.name).api_key_env"
            raw = environment[name]
            if raw == nil { throw ConfigErrors([ConfigError(where_, "the environment variable \(name) is not set")]) }
        }
        let key = (raw ?? "").trimmingASCIIWhitespaceAndNewlines()
        guard !key.isEmpty, key.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw ConfigErrors([ConfigError(where_, "the key must be one line of visible ASCII characters")])
        }
        return key
    }
}

/// One declared backend tool: arguments into the path, query or JSON body; the answer
/// back as structured content (JSON) or text, within the size cap.
struct BackendTool: Tool {
    let spec: BackendToolSpec
    let connector: BackendConnector

    var definition: ToolDefinition {
        let m = spec.method
        return ToolDefinition(name: spec.name, title: spec.title, description: spec.description, inputSchema: spec.inputSchema,
                              annotations: ToolAnnotations(readOnly: m == "GET", destructive: m == "DELETE",
                                                           idempotent: ["GET", "PUT", "DELETE"].contains(m), openWorld: true),
                              permission: spec.permission)
    }

    func call(arguments: JSONObject, context: ToolContext) throws -> ToolResult {
        let path = try spec.path.render(arguments) + QueryString.render(spec.query, from: arguments)
        var body: [UInt8]?
        if BackendConfig.bodyMethods.contains(spec.method) {
            var o = JSONObject()
            for name in spec.body { if let v = arguments[name] { o[name] = v } }
            body = JSONWriter.serialize(.object(o))
        }
        let response = try connector.send(method: spec.method, pathAndQuery: path, body: body, route: spec.route, caller: context.caller)
        guard (200..<300).contains(response.status) else {
            throw BackendFailure.error(connector.name, response, action: "running \(spec.name)")
        }
        guard response.body.count <= spec.maxResponseBytes else {
            throw ToolError("The answer from the backend \(connector.name) is larger than \(spec.maxResponseBytes) bytes (max_response_bytes).",
                            upstreamStatus: response.status)
        }
        var result: ToolResult
        switch spec.response {
        case .text:
            // Decoding would silently replace bytes that are not UTF-8; such a body is refused instead.
            guard let text = String(validating: response.body, as: UTF8.self) else {
                throw ToolError("The backend \(connector.name) answered \(spec.name) with a body that is not UTF-8 text.",
                                upstreamStatus: response.status)
            }
            result = ToolResult(content: [["type": "text", "text": .string(text)]])
        case .json:
            if response.body.isEmpty {
                result = .structured(["status": .integer(response.status)])
            } else if let value = try? JSONParser.parse(response.body, limits: JSONLimits(maxDepth: 64, maxBytes: spec.maxResponseBytes)) {
                // Structured content is an object; other JSON is wrapped so clients can still validate it.
                if case .object = value { result = .structured(value) } else { result = .structured(["result": value]) }
            } else {
                throw ToolError("The backend \(connector.name) answered \(spec.name) with something that is not JSON.",
                                upstreamStatus: response.status)
            }
        }
        result.upstreamStatus = response.status
        return result
    }
}

/// `backend_login`, `backend_logout`, `backend_session_status` over every session backend
/// the caller may use. The session is always the caller's own: the key comes from the verified token.
struct BackendSessionTool: Tool {
    enum Kind: CaseIterable {
        case login, logout, status

        /// The tool's name; `BuiltInTools` reserves these.
        var name: String {
            switch self {
            case .login: return "backend_login"
            case .logout: return "backend_logout"
            case .status: return "backend_session_status"
            }
        }
    }
    let kind: Kind
    let backends: [BackendConnector]

    var definition: ToolDefinition {
        let names = backends.map { JSONValue.string($0.name) }
        var properties = JSONObject(pairs: [("backend", ["type": "string", "enum": .array(names),
                                                         "description": "Which backend (optional when there is only one)."])])
        if kind == .status {
            properties["check"] = ["type": "boolean", "description": "Ask the backend now whether the session still works (default false)."]
        }
        let schema: JSONValue = ["type": "object", "properties": .object(properties), "additionalProperties": false]
        // One permission for all of them when the backends agree; otherwise each call checks its backend's.
        let permissions = Set(backends.map { $0.settings.permission })
        let permission = permissions.count == 1 ? permissions.first : nil
        switch kind {
        case .login:
            return ToolDefinition(name: kind.name, title: "Sign in to a backend",
                                  description: "Signs you in to a backend as yourself and keeps the session for your later calls. Optional: backend tools sign in by themselves when needed.",
                                  inputSchema: schema, annotations: ToolAnnotations(readOnly: false, idempotent: true, openWorld: true),
                                  permission: permission)
        case .logout:
            return ToolDefinition(name: kind.name, title: "Sign out of a backend",
                                  description: "Ends your session with a backend (its logout endpoint) and forgets it here.",
                                  inputSchema: schema, annotations: ToolAnnotations(readOnly: false, idempotent: true, openWorld: true),
                                  permission: permission)
        case .status:
            return ToolDefinition(name: kind.name, title: "Backend session status",
                                  description: "Shows whether you have a session with a backend, when it expires and when it was last confirmed.",
                                  inputSchema: schema, annotations: ToolAnnotations(readOnly: true, openWorld: true),
                                  permission: permission)
        }
    }

    func call(arguments: JSONObject, context: ToolContext) throws -> ToolResult {
        let connector: BackendConnector
        if let name = arguments["backend"]?.stringValue {
            guard let c = backends.first(where: { $0.name == name }) else { throw ToolError("No session backend named \(name).") }
            connector = c
        } else if backends.count == 1 {
            connector = backends[0]
        } else {
            throw ToolError("Name the backend: one of \(backends.map(\.name).joined(separator: ", ")).")
        }
        guard context.caller.may(connector.settings.permission) else {
            throw ToolError("You need the permission \(connector.settings.permission) to use the backend \(connector.name).")
        }
        let caller = context.caller
        switch kind {
        case .login:
            let target = try connector.target(for: caller)
            let (session, fresh) = try connector.openSession(caller, target)
            var o = JSONObject(pairs: [("backend", .string(connector.name)), ("session", "active"), ("new", .bool(fresh))])
            if let e = session.jar.expiresAt { o["expires_at"] = .string(Timestamp.iso8601(e)) }
            return .structured(.object(o))
        case .logout:
            return .structured(.object(try connector.logout(caller)))
        case .status:
            return .structured(.object(try connector.status(caller, verify: arguments["check"]?.boolValue ?? false)))
        }
    }
}
