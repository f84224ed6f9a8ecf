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

        // What every layer shares: HTTP request/response types, JSON-lines logging, ISO 8601 times, hex,
        // and the state directory with its private files.
        .target(name: "GatewaySupport", dependencies: ["MCPJSON"], swiftSettings: [.swiftLanguageMode(.v5)]),

        // The request path: FastCGI -> HTTP -> transport rules -> MCP dispatch -> tools.
        .target(name: "MCPGateway",
                dependencies: ["CFastCGI", "CSQLite", "CSharedCounters", "CCurl", "COpenSSL", "MCPJSON", "EntraAuth", "GatewaySupport"],
                swiftSettings: [.swiftLanguageMode(.v5)]),

        // Bearer-token verification: JWS, JWKS fetching and caching, Entra claims policy.
        .target(name: "EntraAuth",
                dependencies: ["MCPJSON", "COpenSSL", "CCurl", "GatewaySupport"],
                swiftSettings: [.swiftLanguageMode(.v5)]),

        .executableTarget(name: "mcp-fcgi",
                          dependencies: ["MCPGateway", "GatewaySupport",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: [.swiftLanguageMode(.v5)]),

        .testTarget(name: "MCPJSONTests", dependencies: ["MCPJSON"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "EntraAuthTests", dependencies: ["EntraAuth", "MCPJSON", "COpenSSL"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(name: "MCPGatewayTests", dependencies: ["MCPGateway", "MCPJSON", "EntraAuth", "GatewaySupport"],
                    swiftSettings: [.swiftLanguageMode(.v5)]),
    ]
)
