import EntraAuth
import Foundation

// Mints many distinct development tokens at once for the cold-verification row of
// bench/run (one `mcp-fcgi dev-token` process per token would take far too long).
//
//   mint-tokens STATE_DIR TENANT AUDIENCE COUNT > tokens.txt

let args = CommandLine.arguments
guard args.count == 5, let count = Int(args[4]), count > 0 else {
    FileHandle.standardError.write(Data("usage: mint-tokens STATE_DIR TENANT AUDIENCE COUNT\n".utf8))
    exit(64)
}
let key = try DevSigningKey.load(path: args[1] + "/" + DevSigningKey.fileName)
let minter = DevTokenMinter(key: key)
var out = ""
out.reserveCapacity(count * 900)
for i in 0..<count {
    // A different user per token: distinct bytes, so every request misses the token cache.
    out += try minter.mint(tenantId: args[2], objectId: String(format: "22222222-2222-4222-8222-%012d", i),
                           audience: args[3], scopes: ["mcp.tools"], ttl: 7200) + "\n"
}
FileHandle.standardOutput.write(Data(out.utf8))
