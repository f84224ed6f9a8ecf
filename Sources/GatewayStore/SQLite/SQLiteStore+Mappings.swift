import EntraAuth

extension SQLiteStore: WorkspaceMappingStore {
    public func addMappings(_ mappings: [WorkspaceMapping]) throws {
        try db.transaction(write: true) { db in
            for m in mappings {
                try db.query("INSERT OR IGNORE INTO workspace_map (tenant, kind, principal, workspace) VALUES (?, ?, ?, ?)",
                             [.text(m.tenant), .text(m.kind.rawValue), .text(m.principal), .text(m.workspace)])
            }
        }
    }

    public func removeMapping(_ m: WorkspaceMapping) throws -> Bool {
        try db.transaction(write: true) { db in
            try db.query("DELETE FROM workspace_map WHERE tenant = ? AND kind = ? AND principal = ? AND workspace = ? RETURNING tenant",
                         [.text(m.tenant), .text(m.kind.rawValue), .text(m.principal), .text(m.workspace)]).count == 1
        }
    }

    public func mappings(tenant: String?) throws -> [WorkspaceMapping] {
        try db.transaction(write: false) { db in
            let sql = "SELECT tenant, kind, principal, workspace FROM workspace_map"
            let rows = try tenant.map { try db.query(sql + " WHERE tenant = ? ORDER BY kind, principal, workspace", [.text($0.lowercased())]) }
                ?? db.query(sql + " ORDER BY tenant, kind, principal, workspace")
            return rows.compactMap { r in
                guard let t = r[0].text, let k = r[1].text.flatMap(WorkspaceMapping.Kind.init(rawValue:)),
                      let p = r[2].text, let w = r[3].text else { return nil }
                return try? WorkspaceMapping(tenant: t, kind: k, principal: p, workspace: w)
            }
        }
    }

    public func workspaces(tenant: String, user: String, groups: [String]) throws -> Set<String> {
        // One query for the user and all their groups.
        let groupClause = groups.isEmpty ? "" : " OR (kind = 'group' AND principal IN (\(Array(repeating: "?", count: groups.count).joined(separator: ", "))))"
        var params: [SQLiteDatabase.Value] = [.text(tenant.lowercased()), .text(Principal.canonicalUserID(user))]
        params += groups.map { .text($0.lowercased()) }
        return try db.transaction(write: false) { db in
            Set(try db.query("SELECT workspace FROM workspace_map WHERE tenant = ? AND ((kind = 'user' AND principal = ?)\(groupClause))",
                             params).compactMap { $0.first?.text })
        }
    }
}
