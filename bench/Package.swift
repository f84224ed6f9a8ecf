// swift-tools-version:6.0
// Benchmarks, kept out of the main package so users never build them.
import PackageDescription

let package = Package(
    name: "mcp-fcgi-bench",
    dependencies: [.package(name: "mcp-fcgi", path: "..")],
    targets: [
        .executableTarget(name: "token-verify-bench",
                          dependencies: [.product(name: "EntraAuth", package: "mcp-fcgi")],
                          swiftSettings: [.swiftLanguageMode(.v5)]),
        .executableTarget(name: "mint-tokens",
                          dependencies: [.product(name: "EntraAuth", package: "mcp-fcgi")],
                          swiftSettings: [.swiftLanguageMode(.v5)]),
    ]
)
