extension SQLiteStore: APIKeyStore {
    public func addAPIKey(_ k: APIKeyRecord) throws {
        _ = try db.transaction(write: true) { db in
            try db.query("INSERT INTO api_keys (id, name, tenant, roles, hmac, created, expires, revoked) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         [.text(k.id), .text(k.name), .text(k.tenant), .text(k.roles.joined(separator: " ")), .text(k.hmac),
                          .int(k.created), k.expires.map { .int($0) } ?? .null, k.revoked.map { .int($0) } ?? .null])
        }
    }

    public func apiKey(id: String) throws -> APIKeyRecord? {
        try db.transaction(write: false) { db in
            try db.query("SELECT \(Self.apiKeyColumns) FROM api_keys WHERE id = ?", [.text(id)]).compactMap(Self.apiKey).first
        }
    }

    public func apiKeys() throws -> [APIKeyRecord] {
        try db.transaction(write: false) { db in
            try db.query("SELECT \(Self.apiKeyColumns) FROM api_keys ORDER BY created DESC, id").compactMap(Self.apiKey)
        }
    }

    public func revokeAPIKey(id: String, at time: Int64) throws -> Bool {
        try db.transaction(write: true) { db in
            try db.query("UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL RETURNING id", [.int(time), .text(id)]).count > 0
        }
    }

    private static let apiKeyColumns = "id, name, tenant, roles, hmac, created, expires, revoked"

    private static func apiKey(_ row: [SQLiteDatabase.Value]) -> APIKeyRecord? {
        guard row.count == 8, let id = row[0].text, let name = row[1].text, let tenant = row[2].text, let roles = row[3].text,
              let hmac = row[4].text, let created = row[5].int else { return nil }
        return APIKeyRecord(id: id, name: name, tenant: tenant, roles: roles.split(separator: " ").map(String.init), hmac: hmac,
                            created: created, expires: row[6].int, revoked: row[7].int)
    }
}
