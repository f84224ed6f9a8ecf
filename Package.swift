// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "mcp-fcgi",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "mcp-fcgi", targets: ["mcp-fcgi"]),
        .library(name: "MCPGateway", targets: ["MCPGateway"]),
        .library(name: "EntraAuth", targets: ["EntraAuth"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C libraries from Debian's -dev packages.
        .systemLibrary(name: "CFastCGI", path: "Sources/CFastCGI", pkgConfig: "fcgi",
                       providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        // libcurl (headers from libcurl4-openssl-dev), loaded with dlopen on first use.
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("dl")]),

        // Counters in a file mapped by every process, with atomic adds (metrics).
        .target(name: "CSharedCounters"),

        // A small, strict JSON value type with limits (depth, size) and a fast writer.
        .target(name: "MCPJSON", swiftSettings: [.swiftLanguageMode(.v5)]),

        // The one importer of COpenSSL: SHA-256, secure random, signatures, keys, X.509, AES-GCM.
        .target(name: "GatewayCrypto", dependencies: ["COpenSSL", "GatewaySupport"], swiftSettings: [.swiftLanguageMode(.v5)]),

        // What every layer shares: HTTP request/response types, JSON-lines logging, ISO 8601 times, hex,
        // and the state directory with its private files.
        .target(name: "GatewaySupport", dependencies: ["MCPJSON"], swiftSettings: [.swiftLanguageMode(.v5)]),

        // The state every process of a deployment shares (blocks, rate limits, audit, sessions,
        // mappings, backend sessions), one interface per concern; SQLite is its engine.
        // EntraAuth for the GUID rule a workspace mapping's ids must follow.
        .target(name: "GatewayStore", dependencies: ["CSQLite", "MCPJSON", "GatewaySupport", "EntraAuth"],
                swiftSettings: [.swiftLanguageMode(.v5)]),

        // The request path: FastCGI -> HTTP -> transport rules -> MCP dispatch -> tools.
        .target(name: "MCPGateway",
                dependencies: ["CFastCGI", "CSharedCounters", "GatewayCrypto", "MCPJSON", "EntraAuth", "GatewaySupport",
                               "GatewayStore", "UpstreamHTTP"],
                swiftSettings: [.swiftLanguageMode(.v5)]),

        // Outgoing HTTP on libcurl (the only user of CCurl): one transport for the key fetcher and the
        // upstream clients, the upstream contracts, the client credential and the token broker.
        .target(name: "UpstreamHTTP",
                dependencies: ["CCurl", "GatewayCrypto", "EntraAuth", "MCPJSON"],
                swiftSettings: [.swiftLanguageMode(.v5)]),

        // Bearer-token verification: JWS, JWKS fetching (over any `HTTPFetching`) and caching, Entra claims policy.
        .target(name: "EntraAuth",
                dependencies: ["MCPJSON", "GatewayCrypto", "GatewaySupport"],
                swiftSettings: [.swiftLanguageMode(.v5)]),

        .executableTarget(name: "mcp-fcgi",
                          dependencies: ["MCPGateway", "GatewaySupport", "GatewayStore",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: [.swiftLanguageMode(.v5)]),

        // Fakes and fixtures the test targets share (test HTTP server, clock, Entra keys and tokens).
        // Not a product; no production target may depend on it.
        .target(name: "MCPGatewayTesting", dependencies: ["EntraAuth", "GatewayCrypto", "MCPJSON"],
                swiftSettings: [.swiftLanguageMode(.v5)]),

        .testTarget(name: "MCPJSONTests", dependencies: ["MCPJSON"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "GatewayCryptoTests", dependencies: ["GatewayCrypto"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "EntraAuthTests", dependencies: ["EntraAuth", "MCPJSON", "GatewayCrypto", "UpstreamHTTP", "MCPGatewayTesting"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "MCPGatewayTests", dependencies: ["MCPGateway", "MCPJSON", "EntraAuth", "GatewayCrypto", "GatewaySupport",
                                                            "GatewayStore", "UpstreamHTTP", "MCPGatewayTesting"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
    ]
)
