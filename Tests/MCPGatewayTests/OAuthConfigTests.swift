import Foundation
import GatewayCrypto
import MCPGatewayTesting
import MCPJSON
import XCTest
@testable import MCPGateway

final class OAuthConfigTests: XCTestCase {
    static let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    static let otherTenant = "11111111-2222-3333-4444-555555555555"

    func root(oauth: JSONValue?, publicURL: String = "https://mcp.contoso.test/mcp", auth: JSONObject = [:],
              credential: Bool = true) -> JSONObject {
        var a: JSONObject = ["tenant_id": .string(Self.tenant), "client_id": "api://mcp", "scopes_supported": ["api://mcp/mcp.tools"]]
        for (k, v) in auth { a[k] = v }
        var r: JSONObject = ["server": ["public_url": .string(publicURL)], "auth": .object(a)]
        if credential {
            r["credential"] = ["client_id": "5e3c2a4b-1111-2222-3333-444455556666", "client_secret_file": "/etc/mcp-fcgi/secret"]
        }
        if let oauth { r["oauth"] = oauth }
        return r
    }

    func parse(_ root: JSONObject) throws -> GatewayConfig { try ProcessConfig.parse(root).instances[0] }

    func assertProblems(_ root: JSONObject, _ expected: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(root), file: file, line: line) { error in
            let problems = (error as? ConfigErrors)?.errors.map(\.description) ?? ["\(error)"]
            XCTAssertEqual(problems, expected, file: file, line: line)
        }
    }

    func testAbsentOrDisabledMeansNoFront() throws {
        XCTAssertNil(try parse(root(oauth: nil)).oauth)
        XCTAssertNil(try parse(root(oauth: ["enabled": false])).oauth)
        XCTAssertNil(try parse(root(oauth: ["enabled": false, "code_seconds": 30], credential: false)).oauth,
                     "a switched-off front needs nothing of the rest")
        assertProblems(root(oauth: ["enabled": false, "code_second": 30]),
                       ["oauth.code_second: unknown setting (check the spelling against the README's configuration reference)"])
    }

    func testDefaultsAreResolved() throws {
        let o = try XCTUnwrap(parse(root(oauth: ["enabled": true])).oauth)
        XCTAssertEqual(o.issuer, "https://mcp.contoso.test/")
        XCTAssertEqual(o.basePath, "")
        XCTAssertEqual(o.entraTenant, Self.tenant)
        XCTAssertEqual(o.scopes, ["api://mcp/mcp.tools"])
        XCTAssertNil(o.redirectHosts)
        XCTAssertTrue(o.clients.isEmpty)
        XCTAssertEqual([o.codeSeconds, o.authorizeMinutes, o.refreshDays, o.refreshGraceSeconds, o.consentDays,
                        o.registrationsPerHour, o.metadataDocumentMaxBytes], [60, 10, 90, 30, 30, 20, 5120])
        XCTAssertFalse(o.allowPrivateMetadataHostsForTesting)
    }

    func testIssuerUnderAnInstancePathAndMultiTenantSignIn() throws {
        let o = try XCTUnwrap(parse(root(oauth: ["enabled": true], publicURL: "https://h.test:8443/client-a/mcp",
                                         auth: ["allowed_tenants": [.string(Self.otherTenant)]])).oauth)
        XCTAssertEqual(o.issuer, "https://h.test:8443/client-a")
        XCTAssertEqual(o.basePath, "/client-a")
        XCTAssertEqual(o.entraTenant, "organizations", "two allowed tenants sign in through organizations")
        let any = try XCTUnwrap(parse(root(oauth: ["enabled": true], auth: ["accept_any_tenant": true])).oauth)
        XCTAssertEqual(any.entraTenant, "organizations")
    }

    func testEveryKeyIsRead() throws {
        let o = try XCTUnwrap(parse(root(oauth: [
            "enabled": true, "issuer": "https://mcp.contoso.test", "entra_tenant": "Common", "scopes": ["api://mcp/a", "api://mcp/b"],
            "redirect_hosts": ["Claude.ai", "claude.com"], "code_seconds": 30, "authorize_minutes": 5, "refresh_days": 7,
            "refresh_grace_seconds": 0, "consent_days": 1, "registrations_per_hour": 3, "metadata_document_max_bytes": 2048,
            "allow_private_metadata_hosts_for_testing": true,
        ])).oauth)
        XCTAssertEqual(o.issuer, "https://mcp.contoso.test/")
        XCTAssertEqual(o.entraTenant, "common")
        XCTAssertEqual(o.scopes, ["api://mcp/a", "api://mcp/b"])
        XCTAssertEqual(o.redirectHosts, ["claude.ai", "claude.com"])
        XCTAssertEqual([o.codeSeconds, o.authorizeMinutes, o.refreshDays, o.refreshGraceSeconds, o.consentDays,
                        o.registrationsPerHour, o.metadataDocumentMaxBytes], [30, 5, 7, 0, 1, 3, 2048])
        XCTAssertTrue(o.allowPrivateMetadataHostsForTesting)
    }

    func testCABundleIsTrustedForMetadataDocumentsWithVerificationOn() throws {
        let standard = try XCTUnwrap(parse(root(oauth: ["enabled": true])).oauth)
        XCTAssertNil(standard.caBundle)
        XCTAssertNil(ClientMetadataDocumentFetcher.transport(for: standard).options.caBundlePath, "the system store by default")
        let o = try XCTUnwrap(parse(root(oauth: ["enabled": true, "ca_bundle": "/etc/mcp-fcgi/clients-ca.pem"])).oauth)
        XCTAssertEqual(o.caBundle, "/etc/mcp-fcgi/clients-ca.pem")
        let options = ClientMetadataDocumentFetcher.transport(for: o).options
        XCTAssertEqual(options.caBundlePath, "/etc/mcp-fcgi/clients-ca.pem")
        XCTAssertFalse(options.allowInsecureHTTPForTesting, "a private CA does not open plain http")
        assertProblems(root(oauth: ["enabled": true, "ca_bundle": "clients-ca.pem"]),
                       ["oauth.ca_bundle: must be an absolute path to a PEM file"])
    }

    func testTheFrontNeedsACredentialAndEntra() {
        assertProblems(root(oauth: ["enabled": true], credential: false),
                       ["oauth.enabled: needs the credential section: the gateway signs users in at Entra as its own confidential client"])
        assertProblems(root(oauth: ["enabled": true], auth: ["mode": "development"]),
                       ["oauth.enabled: needs auth.mode \"entra\": the front hands out Entra's tokens, which development mode does not accept"])
        assertProblems(root(oauth: ["enabled": true], auth: ["scopes_supported": []]),
                       ["oauth.scopes: is required when auth.scopes_supported is empty: the API scopes to ask Entra for, e.g. api://…/mcp.tools"])
    }

    func testIssuerRules() throws {
        let https = "oauth.issuer: must be an absolute https URL (plain http only with auth.allow_insecure_http_for_testing)"
        assertProblems(root(oauth: ["enabled": true, "issuer": "http://mcp.contoso.test"]), [https])
        assertProblems(root(oauth: ["enabled": true, "issuer": "mcp.contoso.test"]), [https])
        assertProblems(root(oauth: ["enabled": true, "issuer": "https://u@mcp.contoso.test"]), [https])
        assertProblems(root(oauth: ["enabled": true, "issuer": "https://mcp.contoso.test?x=1"]),
                       ["oauth.issuer: must not have a query or fragment"])
        assertProblems(root(oauth: ["enabled": true, "issuer": "https://mcp.contoso.test#x"]),
                       ["oauth.issuer: must not have a query or fragment"])
        // A root issuer is written with its slash, as URL parsers write it; any other has none.
        XCTAssertEqual(try XCTUnwrap(parse(root(oauth: ["enabled": true, "issuer": "https://mcp.contoso.test/"])).oauth).issuer,
                       "https://mcp.contoso.test/")
        assertProblems(root(oauth: ["enabled": true, "issuer": "https://mcp.contoso.test/mcp/"]), ["oauth.issuer: must not end with a slash"])
        assertProblems(root(oauth: ["enabled": true, "issuer": "https://auth.contoso.test"]),
                       ["oauth.issuer: must be the start of server.public_url (https://mcp.contoso.test/mcp): the front's endpoints are served by this instance"])
        assertProblems(root(oauth: ["enabled": true, "issuer": "https://mcp.contoso.test/m"]),
                       ["oauth.issuer: must be the start of server.public_url (https://mcp.contoso.test/mcp): the front's endpoints are served by this instance"])
        assertProblems(root(oauth: ["enabled": true], publicURL: "http://127.0.0.1:8080/mcp"),
                       ["oauth.issuer: derived from server.public_url (http://127.0.0.1:8080): must be an absolute https URL (plain http only with auth.allow_insecure_http_for_testing)"])
        let rig = try XCTUnwrap(parse(root(oauth: ["enabled": true], publicURL: "http://127.0.0.1:8080/a/mcp",
                                           auth: ["allow_insecure_http_for_testing": true])).oauth)
        XCTAssertEqual(rig.issuer, "http://127.0.0.1:8080/a")
        XCTAssertEqual(rig.basePath, "/a")
    }

    func testValueProblemsCarryTheirPaths() {
        assertProblems(root(oauth: ["enabled": true, "code_seconds": 5, "registrations_per_hour": "many", "entra_tenant": "contoso",
                                    "scopes": ["api://mcp/a b", "offline_access"], "redirect_hosts": ["https://claude.ai", "claude.ai:443"],
                                    "clients": "none"]), [
            "oauth.redirect_hosts[0]: https://claude.ai is not a host name such as claude.ai",
            "oauth.redirect_hosts[1]: claude.ai:443 is not a host name such as claude.ai",
            "oauth.code_seconds: must be between 10 and 600, not 5",
            "oauth.registrations_per_hour: must be a whole number",
            "oauth.clients: must be a list of client objects",
            "oauth.scopes[0]: must be one scope, without spaces",
            "oauth.scopes: list only the API scopes: the server adds offline_access openid itself",
            "oauth.entra_tenant: must be a tenant id (GUID), organizations or common",
        ])
    }

    func testInstancesHaveTheirOwnSection() throws {
        let base = root(oauth: nil)
        var config = base
        config["server"] = ["public_url": "https://h.test/a/mcp"]
        config["instances"] = [
            "a": ["oauth": ["enabled": true]],
            "b": ["server": ["mcp_path": "/b/mcp", "public_url": "https://h.test/b/mcp"],
                  "auth": ["tenant_id": .string(Self.tenant), "client_id": "api://b"], "oauth": ["enabled": true, "bogus": 1]],
        ]
        XCTAssertThrowsError(try ProcessConfig.parse(config)) { error in
            let problems = (error as? ConfigErrors)?.errors.map(\.description) ?? []
            XCTAssertEqual(problems, [
                "instances.b.oauth.scopes: is required when auth.scopes_supported is empty: the API scopes to ask Entra for, e.g. api://…/mcp.tools",
                "instances.b.oauth.bogus: unknown setting (check the spelling against the README's configuration reference)",
            ])
        }
        config["instances"] = ["a": ["oauth": ["enabled": true]], "b": ["server": ["mcp_path": "/b/mcp", "public_url": "https://h.test/b/mcp"],
                                                                        "auth": ["tenant_id": .string(Self.tenant), "client_id": "api://b"]]]
        let instances = try ProcessConfig.parse(config).instances.sorted { $0.instanceName < $1.instanceName }
        XCTAssertEqual(instances.map { $0.oauth?.issuer }, ["https://h.test/a", nil])
    }

    // MARK: clients

    func secretFile(_ content: String, mode: mode_t = 0o600) throws -> String {
        let dir = makeTempDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/client.secret"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(content.utf8)))
        chmod(path, mode)
        return path
    }

    func testStaticClients() throws {
        let secret = String(repeating: "s", count: 40)
        let path = try secretFile(secret + "\n")
        let o = try XCTUnwrap(parse(root(oauth: ["enabled": true, "redirect_hosts": ["claude.ai"], "clients": [
            ["client_id": "ops-console", "client_name": "Ops console", "redirect_uris": ["https://ops.contoso.test/cb"],
             "client_secret_file": .string(path)],
            ["client_id": "poster", "client_name": "Poster", "redirect_uris": ["https://p.contoso.test/cb"],
             "client_secret_file": .string(path), "token_endpoint_auth_method": "client_secret_post"],
            ["client_id": "cli", "client_name": "CLI", "redirect_uris": ["http://127.0.0.1/cb", "http://[::1]/cb"]],
        ]])).oauth)
        XCTAssertEqual(o.clients.map(\.clientId), ["ops-console", "poster", "cli"])
        XCTAssertEqual(o.clients[0].clientName, "Ops console")
        XCTAssertEqual(o.clients[0].redirectURIs, ["https://ops.contoso.test/cb"], "redirect_hosts limit registrations, not the config")
        XCTAssertEqual(o.clients[0].secretSHA256, SHA256Digest(Array(secret.utf8)).hex, "the file's trailing newline is not the secret")
        XCTAssertEqual(o.clients.map(\.authMethod), [.clientSecretBasic, .clientSecretPost, .none])
        XCTAssertNil(o.clients[2].secretSHA256)
    }

    func testStaticClientProblems() throws {
        let open = try secretFile(String(repeating: "s", count: 40), mode: 0o644)
        let short = try secretFile("short")
        let good = try secretFile(String(repeating: "s", count: 40))
        let c = "oauth.clients"
        assertProblems(root(oauth: ["enabled": true, "clients": [
            ["client_id": "a", "client_name": "A", "redirect_uris": ["https://a.test/cb"], "client_secret_file": .string(open)],
            ["client_id": "b", "client_name": "B", "redirect_uris": ["https://b.test/cb"], "client_secret_file": .string(short)],
            ["client_id": "c", "client_name": "C", "redirect_uris": ["https://c.test/cb"], "client_secret_file": "/nonexistent/secret"],
            ["client_id": "d", "client_name": "D", "redirect_uris": ["https://d.test/cb"], "client_secret_file": "relative/secret"],
            ["client_id": "e", "client_name": "E", "redirect_uris": ["https://e.test/cb"], "client_secret_file": .string(good),
             "token_endpoint_auth_method": "none"],
            ["client_id": "f", "client_name": "F", "redirect_uris": ["https://f.test/cb"], "token_endpoint_auth_method": "client_secret_post"],
            ["client_id": "g g", "client_name": "", "redirect_uris": ["http://g.test/cb", "https://g.test/cb#x"], "colour": "red"],
            ["client_id": "mcpc_0123", "client_name": "H", "redirect_uris": []],
            ["client_id": "a", "client_name": "A again", "redirect_uris": ["https://a.test/cb"]],
            ["client_id": "i", "client_name": "I", "redirect_uris": ["https://i.test/cb"], "token_endpoint_auth_method": "private_key_jwt"],
            "j",
        ]]), [
            "\(c)[0].client_secret_file: client secret file \(open) must not be readable by group or others (chmod 600)",
            "\(c)[1].client_secret_file: \(short) holds fewer than 32 characters: use a long random secret (openssl rand -hex 32)",
            "\(c)[2].client_secret_file: /nonexistent/secret does not exist",
            "\(c)[3].client_secret_file: must be an absolute path",
            "\(c)[4].token_endpoint_auth_method: is none, but client_secret_file is set: a public client has no secret",
            "\(c)[5].client_secret_file: is required by token_endpoint_auth_method client_secret_post",
            "\(c)[6].client_id: is required: up to 200 visible ASCII characters",
            "\(c)[6].client_name: is required: the name the consent page shows, up to 200 printable characters",
            "\(c)[6].redirect_uris[0]: must use https (plain http only on 127.0.0.1, [::1] or localhost)",
            "\(c)[6].redirect_uris[1]: must not contain a fragment (#)",
            "\(c)[6].colour: unknown setting (check the spelling against the README's configuration reference)",
            "\(c)[7].client_id: must not start with mcpc_, which names dynamically registered clients",
            "\(c)[7].redirect_uris: list 1 to 20 redirect URIs",
            "\(c)[8].client_id: a is listed twice",
            "\(c)[9].token_endpoint_auth_method: must be none, client_secret_basic or client_secret_post",
            "\(c)[10]: must be an object",
        ])
    }
}
