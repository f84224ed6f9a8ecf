// swift-tools-version:6.0
import PackageDescription

// Which target imports which C library (each is imported by exactly one Swift target):
//   libfcgi    CFastCGI         -> FastCGIFront
//   libcrypto  COpenSSL         -> GatewayCrypto
//   SQLite     CSQLite          -> GatewayStore
//   libpq      CLibPQ           -> PostgresStore   (dlopen on first use)
//   libcurl    CCurl            -> UpstreamHTTP    (dlopen on first use)
//   (ours)     CSharedCounters  -> SharedMetrics
//   (ours)     CSharedBuckets   -> GatewayStore
// ARCHITECTURE.md has the request path and what each target may import.

let v5: [SwiftSetting] = [.swiftLanguageMode(.v5)]

// The server links with lld and packed relative relocations (DT_RELR, glibc 2.36+): gold's
// 1.9 MB of R_X86_64_RELATIVE entries were read once by the loader at every start and stayed
// resident (2.1 MB of each process's RSS); as RELR they take 15 kB.
let leanRelocations: [LinkerSetting] = [
    .unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"], .when(platforms: [.linux])),
]

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
        // Headers only: GatewayStore links SQLite's static archive (see there).
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        // libcurl (headers from libcurl4-openssl-dev), loaded with dlopen on first use.
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("dl")]),
        // libpq (headers from libpq-dev), loaded with dlopen on first use: a SQLite deployment never loads it.
        .target(name: "CLibPQ", linkerSettings: [.linkedLibrary("dl")]),
        // Counters in a file mapped by every process, with atomic adds (metrics).
        .target(name: "CSharedCounters"),
        // Token buckets in a file mapped by every process, under a robust process-shared mutex (rate limits).
        .target(name: "CSharedBuckets"),

        // A small, strict JSON value type with limits (depth, size) and a fast writer.
        .target(name: "MCPJSON", swiftSettings: v5),

        // What every layer shares: HTTP request/response types, JSON-lines logging, ISO 8601 times, hex,
        // and the state directory with its private files.
        .target(name: "GatewaySupport", dependencies: ["MCPJSON"], swiftSettings: v5),

        // SHA-256, secure random, signatures, keys, X.509, AES-GCM over libcrypto (MCPJSON for base64).
        .target(name: "GatewayCrypto", dependencies: ["COpenSSL", "GatewaySupport", "MCPJSON"], swiftSettings: v5),

        // Bearer-token verification: JWS, JWKS fetching (over any `HTTPFetching`) and caching, Entra claims policy.
        .target(name: "EntraAuth", dependencies: ["MCPJSON", "GatewayCrypto", "GatewaySupport"], swiftSettings: v5),

        // The FastCGI and CGI front ends: accept, params and body into an HTTPRequest, answer.
        .target(name: "FastCGIFront", dependencies: ["CFastCGI", "GatewaySupport", "MCPJSON"], swiftSettings: v5),

        // The shared-memory counters file behind /metrics.
        .target(name: "SharedMetrics", dependencies: ["CSharedCounters", "GatewaySupport"], swiftSettings: v5),

        // The state every process of a deployment shares (blocks, rate limits, audit, sessions,
        // mappings, backend sessions), one interface per concern; SQLite is its engine, shared memory
        // the rate limits' and the blocks' change signal. EntraAuth for the GUID rule a workspace
        // mapping's ids must follow; GatewayCrypto for the bucket keys' digests.
        // SQLite linked in (libsqlite3.a, from the same libsqlite3-dev as the .so): a CGI process's
        // dynamic loader would otherwise bind its 1,610 symbols and relocate its data on every start
        // (BENCHMARKS.md, "CGI run directly"). SQLite opens only the gateway's own store files; a
        // Debian update of libsqlite3 reaches mcp-fcgi with its next build.
        .target(name: "GatewayStore", dependencies: ["CSQLite", "CSharedBuckets", "MCPJSON", "GatewaySupport", "EntraAuth",
                                                     "GatewayCrypto"], swiftSettings: v5,
                linkerSettings: [.linkedLibrary(":libsqlite3.a", .when(platforms: [.linux])),
                                 .linkedLibrary("sqlite3", .when(platforms: [.macOS]))]),

        // The same concerns on PostgreSQL, for several hosts sharing one store (store.engine "postgres").
        .target(name: "PostgresStore", dependencies: ["CLibPQ", "GatewayStore", "MCPJSON", "GatewaySupport"], swiftSettings: v5),

        // Outgoing HTTP on libcurl: one transport for the key fetcher and the upstream clients,
        // metering, the upstream contracts, the client credential and the token broker.
        .target(name: "UpstreamHTTP", dependencies: ["CCurl", "GatewayCrypto", "GatewaySupport", "EntraAuth", "MCPJSON"],
                swiftSettings: v5),

        // The request path as stages (route, transport rules, authenticate, admission, sessions,
        // dispatch, authorize tool, tool, audit), the tools, the config and the composition root.
        .target(name: "MCPGateway",
                dependencies: ["MCPJSON", "GatewaySupport", "GatewayCrypto", "EntraAuth", "SharedMetrics", "GatewayStore",
                               "PostgresStore", "UpstreamHTTP"],
                swiftSettings: v5),

        // libstdc++ linked in (StaticLink/libstdc++.so says how and why); every other C library stays shared.
        .executableTarget(name: "mcp-fcgi",
                          dependencies: ["MCPGateway", "FastCGIFront", "GatewaySupport", "GatewayStore", "PostgresStore", "EntraAuth", "MCPJSON", "GatewayCrypto",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: v5,
                          linkerSettings: leanRelocations + [.unsafeFlags(["-L", Context.packageDirectory + "/StaticLink"])]),

        // Fakes and fixtures the test targets share (test HTTP server, clock, Entra keys and tokens).
        // Not a product; no production target may depend on it.
        .target(name: "MCPGatewayTesting", dependencies: ["EntraAuth", "GatewayCrypto", "MCPJSON"], swiftSettings: v5),

        .testTarget(name: "MCPJSONTests", dependencies: ["MCPJSON"], swiftSettings: v5),
        .testTarget(name: "GatewayCryptoTests", dependencies: ["GatewayCrypto", "MCPGatewayTesting", "MCPJSON"], swiftSettings: v5),
        .testTarget(name: "EntraAuthTests", dependencies: ["EntraAuth", "MCPJSON", "GatewayCrypto", "UpstreamHTTP", "MCPGatewayTesting"],
                    swiftSettings: v5),
        .testTarget(name: "FastCGIFrontTests", dependencies: ["FastCGIFront", "GatewaySupport", "CFastCGI"], swiftSettings: v5),
        .testTarget(name: "MCPGatewayTests",
                    dependencies: ["MCPGateway", "MCPJSON", "EntraAuth", "GatewayCrypto", "GatewaySupport", "GatewayStore",
                                   "PostgresStore", "SharedMetrics", "UpstreamHTTP", "MCPGatewayTesting"],
                    swiftSettings: v5),
    ]
)

// libFuzzer targets (Fuzz/, run by scripts/fuzz). They exist only when MCP_FCGI_FUZZ is set, so the
// normal build and tests never compile them: each links libFuzzer's main, which needs --sanitize=fuzzer.
// In this package rather than beside it so they can reach the parsers' `package` entry points.
if Context.environment["MCP_FCGI_FUZZ"] != nil {
    let fuzzTargets: [(name: String, dependencies: [Target.Dependency])] = [
        ("fuzz-json", ["MCPJSON"]),
        ("fuzz-jws", ["EntraAuth", "MCPJSON"]),
        ("fuzz-fastcgi", ["FastCGIFront", "GatewaySupport"]),
        ("fuzz-path-template", ["MCPGateway", "MCPJSON"]),
        ("fuzz-config", ["MCPGateway"]),
        ("fuzz-dax", ["MCPGateway", "MCPJSON"]),
        ("fuzz-cookie-jar", ["MCPGateway"]),
        ("fuzz-oauth-form", ["MCPGateway"]),
        ("fuzz-client-metadata", ["MCPGateway", "MCPJSON"]),
    ]
    for t in fuzzTargets {
        package.targets.append(.executableTarget(name: t.name, dependencies: t.dependencies, path: "Fuzz/Targets/\(t.name)",
                                                 swiftSettings: v5))
    }
}
