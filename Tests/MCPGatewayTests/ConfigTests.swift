import MCPJSON
import XCTest
@testable import MCPGateway

final class ConfigTests: XCTestCase {
    let minimal: JSONObject = JSONObject(pairs: [
        ("server", ["public_url": "https://mcp.example.test/mcp"]),
        ("auth", ["tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "client_id": "api://x"]),
    ])

    func testMinimalConfigHasSafeDefaults() throws {
        let c = try ProcessConfig.parse(minimal).instances[0]
        XCTAssertEqual(c.server.mcpPath, "/mcp")
        XCTAssertEqual(c.auth.mode, .entra)
        XCTAssertFalse(c.auth.acceptAnyTenant)
        XCTAssertFalse(c.auth.acceptAppOnlyTokens)
        XCTAssertFalse(c.auth.allowInsecureHTTPForTesting)
    }

    /// A config that merely names its one instance keeps the single-instance store file, so the
    /// blocks, mappings and sessions already in it stay in force.
    func testOneNamedInstanceKeepsTheSingleInstanceStore() throws {
        let one = try ProcessConfig.parse(JSONObject(pairs: [("state_dir", "/var/lib/x"), ("instances", .object(JSONObject(pairs: [
            ("a", .object(minimal)),
        ])))]))
        XCTAssertEqual(one.instances.map(\.resolvedStorePath), ["/var/lib/x/mcp-fcgi.db"])
        var other = minimal
        other["server"] = ["public_url": "https://mcp.example.test/b/mcp", "mcp_path": "/b/mcp"]
        other["auth"] = ["tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "client_id": "api://y"]
        let two = try ProcessConfig.parse(JSONObject(pairs: [("state_dir", "/var/lib/x"), ("instances", .object(JSONObject(pairs: [
            ("a", .object(minimal)), ("b", .object(other)),
        ])))]))
        XCTAssertEqual(two.instances.map(\.resolvedStorePath), ["/var/lib/x/instance-a.db", "/var/lib/x/instance-b.db"])
    }

    func testTokenCacheSizeIsASetting() throws {
        XCTAssertEqual(try ProcessConfig.parse(minimal).instances[0].auth.tokenCacheEntries, 2_000)
        var root = minimal
        root["auth"] = ["tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "client_id": "api://x", "token_cache_entries": 0]
        XCTAssertEqual(try ProcessConfig.parse(root).instances[0].auth.tokenCacheEntries, 0)
        root["auth"] = ["tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "client_id": "api://x", "token_cache_entries": -1]
        XCTAssertThrowsError(try ProcessConfig.parse(root)) { XCTAssertTrue(String(describing: $0).contains("auth.token_cache_entries")) }
    }

    func testBodyTimeoutDefaultsToTenSecondsWithinOneToThreeHundred() throws {
        var root = minimal
        XCTAssertEqual(try ProcessConfig.parse(root).bodyTimeoutSeconds, 10)
        root["limits"] = ["body_timeout_seconds": 2]
        XCTAssertEqual(try ProcessConfig.parse(root).bodyTimeoutSeconds, 2)
        root["limits"] = ["body_timeout_seconds": 0]
        XCTAssertThrowsError(try ProcessConfig.parse(root)) { XCTAssertTrue(String(describing: $0).contains("limits.body_timeout_seconds")) }
        root["limits"] = ["body_timeout_seconds": 301]
        XCTAssertThrowsError(try ProcessConfig.parse(root))
    }

    func testEveryProblemIsReportedWithItsPath() {
        var root = minimal
        root["server"] = ["public_url": "ftp://x", "mcp_path": "mcp/", "workerz": 3]
        root["limits"] = ["max_body_bytes": "big"]
        root["auth"] = ["mode": "none"]
        XCTAssertThrowsError(try ProcessConfig.parse(root)) { error in
            let text = String(describing: error)
            for needle in ["server.public_url", "server.mcp_path", "server.workerz", "limits.max_body_bytes",
                           "auth.mode", "auth.audiences", "auth.allowed_tenants"] {
                XCTAssertTrue(text.contains(needle), "\(needle) missing from:\n\(text)")
            }
        }
    }

    func testAuthCannotBeLeftOut() {
        var root = minimal
        root["auth"] = nil
        XCTAssertThrowsError(try ProcessConfig.parse(root)) { XCTAssertTrue(String(describing: $0).contains("auth")) }
    }

    func testSeedEnvironmentNamesAreAccepted() throws {
        var root = minimal
        root["auth"] = [:]
        let c = try ProcessConfig.parse(root, environment: [
            "AZURE_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47", "AZURE_CLIENT_ID": "5e3c2a4b-1111-2222-3333-444455556666",
            "TOKEN_AUDIENCE": "api://contoso-mcp", "TOKEN_ISSUER": "https://login.microsoftonline.us/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
        ]).instances[0]
        XCTAssertEqual(c.auth.allowedTenants, ["72f988bf-86f1-41af-91ab-2d7cd011db47"])
        XCTAssertEqual(c.auth.audiences, ["5e3c2a4b-1111-2222-3333-444455556666", "api://contoso-mcp"])
        XCTAssertEqual(c.auth.authority, "https://login.microsoftonline.us")
    }

    func testPlainHTTPAuthorityNeedsTheTestingFlag() {
        var root = minimal
        root["auth"] = ["tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "client_id": "api://x", "authority": "http://127.0.0.1:9"]
        XCTAssertThrowsError(try ProcessConfig.parse(root))
        root["auth"] = ["tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "client_id": "api://x", "authority": "http://127.0.0.1:9",
                        "allow_insecure_http_for_testing": true]
        XCTAssertNoThrow(try ProcessConfig.parse(root))
    }
}

final class SchemaValidatorTests: XCTestCase {
    let schema: JSONValue = [
        "type": "object",
        "properties": [
            "workspace_id": ["type": "string", "format": "uuid"],
            "top": ["type": "integer", "minimum": 1, "maximum": 100],
            "mode": ["enum": ["a", "b"]],
            "tags": ["type": "array", "items": ["type": "string", "maxLength": 3], "maxItems": 2],
        ],
        "required": ["workspace_id"],
        "additionalProperties": false,
    ]

    func testAcceptsValidAndNamesTheProblem() {
        XCTAssertNil(SchemaValidator.validate(["workspace_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "top": 5, "tags": ["x"]], against: schema))
        let cases: [(JSONValue, String)] = [
            ([:], "arguments.workspace_id is required"),
            (["workspace_id": "nope"], "GUID"),
            (["workspace_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "top": 0], "arguments.top must be at least 1"),
            (["workspace_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "top": 1.5], "integer"),
            (["workspace_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "mode": "c"], "one of"),
            (["workspace_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "tags": ["long!"]], "arguments.tags[0]"),
            (["workspace_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "extra": 1], "not a known argument"),
        ]
        for (value, needle) in cases {
            let problem = SchemaValidator.validate(value, against: schema)
            XCTAssertTrue(problem?.contains(needle) ?? false, "\(value): \(problem ?? "nil")")
        }
    }
    /// `pattern` is searched for anywhere in the string, by Unicode scalar; the expected answers
    /// are what NSRegularExpression (ICU) gave for the same pattern and string.
    func testPatternsAreUnanchoredSearchesByUnicodeScalar() {
        let cases: [(String, String, Bool)] = [
            ("^[a-z]+$", "abc", true), ("^[a-z]+$", "abC", false), ("^[a-z]+$", "", false),
            ("\\d{3}-\\d{4}", "call 555-1234 now", true), ("\\d{3}-\\d{4}", "55-1234", false),
            ("^.$", "\u{E9}", true), ("^.$", "e\u{301}", false), ("^.{2}$", "e\u{301}", true), ("^.$", "\u{1F1EB}\u{1F1F7}", false),
            ("[^\\x00-\\x7F]", "plain", false), ("[^\\x00-\\x7F]", "na\u{EF}ve", true),
            ("^(foo|bar)+baz$", "foobarbaz", true), ("^(foo|bar)+baz$", "baz", false),
            ("\\w+@\\w+\\.com", "mail bob@example.com", true), ("\\w+@\\w+\\.com", "bob@ex", false),
            ("a{2,3}", "a", false), ("a{2,3}", "aa", true),
            ("^\\p{Lu}", "\u{C9}a", true), ("^\\p{Lu}", "\u{E9}a", false),
            ("\\bword\\b", "a word here", true), ("\\bword\\b", "swordfish", false),
            ("^\\s*$", " \t", true), ("[[:alpha:]]", "1", false), ("(?i)ABC", "xabcx", true),
        ]
        for (pattern, text, matches) in cases {
            let schema: JSONValue = ["type": "string", "pattern": .string(pattern)]
            let problem = SchemaValidator(schema: schema).validate(.string(text))
            XCTAssertEqual(problem == nil, matches, "\(pattern) on \(text): \(problem ?? "match")")
        }
        // A pattern that does not compile matches nothing, so every value is refused.
        XCTAssertNotNil(SchemaValidator(schema: ["type": "string", "pattern": "("]).validate("("))
    }

    func testInstanceNames() {
        for good in ["a", "client-a", "x_1", "0", String(repeating: "a", count: 63)] { XCTAssertTrue(ProcessConfig.isInstanceName(good), good) }
        for bad in ["", "-a", "_a", "A", "client.a", "caf\u{E9}", "a b", String(repeating: "a", count: 64), "a\n"] {
            XCTAssertFalse(ProcessConfig.isInstanceName(bad), bad)
        }
    }
}
