import EntraAuth
import Foundation

// Measures the token fast path: a cold verification (parse, RSA, claims) and a
// cache hit, each as the median of several rounds, in microseconds per token.

let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
let audience = "api://mcp-fcgi-bench"
let stateDir = NSTemporaryDirectory() + "mcp-fcgi-bench-\(getpid())"
defer { try? FileManager.default.removeItem(atPath: stateDir) }

var config = EntraConfiguration(audiences: [audience], allowedTenants: [tenant], stateDirectory: stateDir)
config.developmentMode = true
let minter = DevTokenMinter(key: try DevSigningKey.loadOrCreate(stateDirectory: stateDir))

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) * 1e6 + Double(ts.tv_nsec) / 1e3
}

func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

let perRound = 2000
let rounds = 7
// Distinct tokens so every verification in the cold rounds misses the cache.
let tokens = try (0..<(perRound * rounds)).map { i in
    try minter.mint(tenantId: tenant, objectId: String(format: "11111111-1111-4111-8111-%012d", i),
                    audience: audience, scopes: ["mcp.tools"], ttl: 3600)
}

var cold: [Double] = []
for r in 0..<rounds {
    let verifier = try TokenVerifier(configuration: config)
    let slice = tokens[(r * perRound)..<((r + 1) * perRound)]
    let t0 = now()
    for t in slice { _ = try verifier.verify(t) }
    cold.append((now() - t0) / Double(perRound))
}

let verifier = try TokenVerifier(configuration: config)
let hot = Array(tokens.prefix(64))
for t in hot { _ = try verifier.verify(t) }
var cached: [Double] = []
for _ in 0..<rounds {
    let n = 50_000
    let t0 = now()
    for i in 0..<n { _ = try verifier.verify(hot[i & 63]) }
    cached.append((now() - t0) / Double(n))
}

print(String(format: "token verification, cold (RS256 + claims): %.1f us/token (budget 150)", median(cold)))
print(String(format: "token verification, cache hit:             %.2f us/token (budget 20)", median(cached)))
