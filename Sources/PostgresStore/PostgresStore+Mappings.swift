import GatewayStore

extension PostgresStore: WorkspaceMappingStore {
    public func addMappings(_ mappings: [WorkspaceMapping]) throws {
        guard !mappings.isEmpty else { return }
        try pool.withConnection { c in
            try c.query("""
                INSERT INTO workspace_map (tenant, kind, principal, workspace)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING
                """, [.textArray(mappings.map(\.tenant)), .textArray(mappings.map(\.kind.rawValue)),
                      .textArray(mappings.map(\.principal)), .textArray(mappings.map(\.workspace))])
        }
    }

    public func removeMapping(_ m: WorkspaceMapping) throws -> Bool {
        try pool.withConnection { c in
            try c.query("DELETE FROM workspace_map WHERE tenant = $1 AND kind = $2 AND principal = $3 AND workspace = $4 RETURNING tenant",
                        [.text(m.tenant), .text(m.kind.rawValue), .text(m.principal), .text(m.workspace)]).count == 1
        }
    }

    public func mappings(tenant: String?) throws -> [WorkspaceMapping] {
        try pool.withConnection { c in
            let sql = "SELECT tenant, kind, principal, workspace FROM workspace_map"
            let rows = try tenant.map { try c.query(sql + " WHERE tenant = $1 ORDER BY kind, principal, workspace", [.text($0.lowercased())]) }
                ?? c.query(sql + " ORDER BY tenant, kind, principal, workspace")
            return rows.compactMap { r in
                guard let t = r.text(0), let k = r.text(1).flatMap(WorkspaceMapping.Kind.init(rawValue:)),
                      let p = r.text(2), let w = r.text(3) else { return nil }
                return try? WorkspaceMapping(tenant: t, kind: k, principal: p, workspace: w)
            }
        }
    }

    public func workspaces(tenant: String, user: String, groups: [String]) throws -> Set<String> {
        try pool.withConnection { c in
            Set(try c.query("""
                SELECT workspace FROM workspace_map
                WHERE tenant = $1 AND ((kind = 'user' AND principal = $2) OR (kind = 'group' AND principal = ANY($3::text[])))
                """, [.text(tenant.lowercased()), .text(user.lowercased()), .textArray(groups.map { $0.lowercased() })])
                .compactMap { $0.text(0) })
        }
    }
}
