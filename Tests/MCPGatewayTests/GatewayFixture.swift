import GatewaySupport
import EntraAuth
import Foundation
import MCPJSON
@testable import MCPGateway

/// A gateway in development mode with a fresh state directory, and helpers to
/// build requests the way nginx would hand them over.
final class GatewayFixture {
    static let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    static let otherTenant = "0b7e9c39-8f15-4a5e-9a57-2f5c2e1f4d11"
    static let audience = "api://mcp-fcgi-test"

    let stateDir: String
    let gateway: Gateway
    let minter: DevTokenMinter

    /// `authWithout`: keys of the default `auth` section to leave out (an instance without Entra settings).
    init(extra: [String: JSONValue] = [:], auth authExtra: [String: JSONValue] = [:], authWithout: [String] = [], tools: [Tool] = []) throws {
        stateDir = NSTemporaryDirectory() + "mcp-fcgi-test-" + UUID().uuidString
        var auth = JSONObject(pairs: [("mode", "development"), ("tenant_id", .string(Self.tenant)),
                                      ("client_id", .string(Self.audience)),
                                      ("scopes_supported", ["https://mcp.example.test/mcp/mcp.tools"])])
        for (k, v) in authExtra { auth[k] = v }
        for k in authWithout { auth[k] = nil }
        var root = JSONObject(pairs: [
            ("server", ["public_url": "https://mcp.example.test/mcp", "instructions": "test instance"]),
            ("limits", ["max_body_bytes": 4096, "max_json_depth": 8, "tools_page_size": 1]),
            ("origins", ["allowed": ["https://app.example.test"]]),
            ("state_dir", .string(stateDir)),
            ("auth", .object(auth)),
        ])
        for (k, v) in extra { root[k] = v }
        let config = try ProcessConfig.parse(root).instances[0]
        var builder = InstanceBuilder(config: config)
        builder.extraTools = tools
        gateway = Gateway(instances: [try builder.build()])
        minter = DevTokenMinter(key: try DevSigningKey.loadOrCreate(stateDirectory: stateDir))
    }

    /// The one instance the fixture serves.
    var instance: GatewayInstance { gateway.instances[0] }

    deinit { try? FileManager.default.removeItem(atPath: stateDir) }

    func token(scopes: [String] = ["mcp.tools"], roles: [String] = [], tenant: String = GatewayFixture.tenant,
               ttl: Int64 = 600) throws -> String {
        try minter.mint(tenantId: tenant, objectId: "11111111-1111-4111-8111-111111111111",
                        audience: Self.audience, scopes: scopes, roles: roles, ttl: ttl)
    }

    static func modernBody(_ method: String, id: Int = 1, params: JSONObject = JSONObject(),
                           version: String = "2026-07-28", capabilities: JSONValue? = [:]) -> JSONValue {
        var p = params
        var meta = JSONObject(pairs: [("io.modelcontextprotocol/protocolVersion", .string(version))])
        if let capabilities { meta["io.modelcontextprotocol/clientCapabilities"] = capabilities }
        p["_meta"] = .object(meta)
        return ["jsonrpc": "2.0", "id": .integer(id), "method": .string(method), "params": .object(p)]
    }

    static func legacyBody(_ method: String, id: Int? = 1, params: JSONObject = JSONObject()) -> JSONValue {
        var o = JSONObject(pairs: [("jsonrpc", "2.0"), ("method", .string(method)), ("params", .object(params))])
        if let id { o["id"] = .integer(id) }
        return .object(o)
    }

    func post(_ body: JSONValue, headers: [String: String] = [:], token: String? = nil, path: String = "/mcp") -> HTTPResponse {
        post(raw: JSONWriter.serialize(body), headers: headers, token: token, path: path)
    }

    func post(raw: [UInt8], headers: [String: String] = [:], token: String? = nil, path: String = "/mcp") -> HTTPResponse {
        var h = HTTPHeaders(["content-type": "application/json", "accept": "application/json, text/event-stream"])
        for (k, v) in headers { h[k] = v.isEmpty ? nil : v }
        if let token { h["authorization"] = "Bearer \(token)" }
        return gateway.respond(to: HTTPRequest(method: "POST", path: path, headers: h, body: raw))
    }

    /// Headers a 2026-07-28 client mirrors from the body.
    static func modernHeaders(_ method: String, name: String? = nil) -> [String: String] {
        var h = ["mcp-protocol-version": "2026-07-28", "mcp-method": method]
        if let name { h["mcp-name"] = name }
        return h
    }
}

extension HTTPResponse {
    var json: JSONValue? { try? JSONParser.parse(body) }
    var errorCode: Int? { json?["error"]?["code"]?.intValue }
}
