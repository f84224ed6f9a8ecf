import GatewayStore

extension PostgresStore: MCPSessionStore {
    public func createSession(id: String, principal: String, now: Double) throws {
        try pool.transaction { c in
            try c.query("INSERT INTO sessions (id, principal, last_used) VALUES ($1, $2, $3)", [.text(id), .text(principal), .double(now)])
            // Expired sessions are swept as new ones are made.
            try c.query("DELETE FROM sessions WHERE last_used < $1", [.double(now - 86_400)])
        }
    }

    public func useSession(id: String, principal: String, now: Double, idle: Double) throws -> Bool {
        try pool.withConnection { c in
            try c.query("UPDATE sessions SET last_used = $1 WHERE id = $2 AND principal = $3 AND last_used >= $4 RETURNING id",
                        [.double(now), .text(id), .text(principal), .double(now - idle)]).count == 1
        }
    }

    public func endSession(id: String, principal: String) throws -> Bool {
        try pool.withConnection { c in
            try c.query("DELETE FROM sessions WHERE id = $1 AND principal = $2 RETURNING id", [.text(id), .text(principal)]).count == 1
        }
    }
}
