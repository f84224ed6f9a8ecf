extension SQLiteStore: MCPSessionStore {
    public func createSession(id: String, principal: String, now: Double) throws {
        try db.transaction(write: true) { db in
            try db.query("INSERT INTO sessions (id, principal, last_used) VALUES (?, ?, ?)", [.text(id), .text(principal), .double(now)])
            // Expired sessions are swept as new ones are made.
            try db.query("DELETE FROM sessions WHERE last_used < ?", [.double(now - 86_400)])
        }
    }

    public func useSession(id: String, principal: String, now: Double, idle: Double) throws -> Bool {
        try db.transaction(write: true) { db in
            try db.query("UPDATE sessions SET last_used = ? WHERE id = ? AND principal = ? AND last_used >= ? RETURNING id",
                         [.double(now), .text(id), .text(principal), .double(now - idle)]).count == 1
        }
    }

    public func endSession(id: String, principal: String) throws -> Bool {
        try db.transaction(write: true) { db in
            try db.query("DELETE FROM sessions WHERE id = ? AND principal = ? RETURNING id", [.text(id), .text(principal)]).count == 1
        }
    }
}
