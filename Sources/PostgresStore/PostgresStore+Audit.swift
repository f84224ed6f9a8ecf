import GatewayStore

/// The audit trail on PostgreSQL. Written directly, each record is committed (durable on the
/// server) before the answer leaves; `archiveAudit` takes batches from a local journal.
extension PostgresStore: AuditLog, AuditArchive {
    static let auditColumns = "time, request_id, instance, tenant, user_id, client_app, method, tool, arguments_digest, arguments, decision, reason, http_status, upstream_status, latency_ms, completed"
    static let auditColumnCount = 16

    static func auditValues(_ r: AuditRecord) -> [PGValue] {
        [.double(r.time), .text(r.requestId), .optional(r.instance), .optional(r.tenant), .optional(r.user), .optional(r.clientApp),
         .optional(r.method), .optional(r.tool), .optional(r.argumentsDigest), .optional(r.arguments), .text(r.decision),
         .optional(r.reason), .int(Int64(r.httpStatus)), .optional(r.upstreamStatus), .double(r.latencyMilliseconds), .bool(r.completed)]
    }

    /// `$first, …` for one row of `auditColumns`.
    static func placeholders(from first: Int) -> String {
        "(" + (first..<(first + auditColumnCount)).map { "$\($0)" }.joined(separator: ", ") + ")"
    }

    public func appendAudit(_ r: AuditRecord) throws {
        try pool.withConnection { c in
            try c.query("INSERT INTO audit (\(Self.auditColumns)) VALUES \(Self.placeholders(from: 1))", Self.auditValues(r))
        }
    }

    /// The sample's token and the insert in one statement: no token, no row.
    public func appendSampledAudit(_ r: AuditRecord, sample: RateBucket) throws -> Bool {
        try pool.withConnection { c in
            let n = Self.auditColumnCount
            let select = (1...n).map { "$\($0)" + Self.auditCasts[$0 - 1] }.joined(separator: ", ")
            return try c.query("""
                INSERT INTO audit (\(Self.auditColumns)) SELECT \(select)
                WHERE mcp_fcgi_take($\(n + 1)::text[], $\(n + 2)::float8[], $\(n + 3)::float8[], $\(n + 4)) IS NULL RETURNING seq
                """, Self.auditValues(r) + Self.takeParameters([sample], now: r.time)).count == 1
        }
    }

    /// A SELECT list has no column to infer parameter types from, so each is spelled out.
    private static let auditCasts = ["::float8", "::text", "::text", "::text", "::text", "::text", "::text", "::text", "::text",
                                     "::text", "::text", "::text", "::integer", "::integer", "::float8", "::boolean"]

    public func beginAudit(_ r: AuditRecord) throws -> AuditEntry {
        var started = r
        started.completed = false
        return try pool.withConnection { c in
            guard let seq = try c.query("INSERT INTO audit (\(Self.auditColumns)) VALUES \(Self.placeholders(from: 1)) RETURNING seq",
                                        Self.auditValues(started)).first?.int(0) else {
                throw StoreError("the audit insert returned no sequence number")
            }
            return AuditEntry(sequence: seq)
        }
    }

    public func completeAudit(_ entry: AuditEntry, with r: AuditRecord) throws {
        let updated = try pool.withConnection { c in
            try c.query("""
                UPDATE audit SET decision = $1, reason = $2, http_status = $3, upstream_status = $4, latency_ms = $5, completed = true
                WHERE seq = $6 AND NOT completed RETURNING seq
                """, [.text(r.decision), .optional(r.reason), .int(Int64(r.httpStatus)), .optional(r.upstreamStatus),
                      .double(r.latencyMilliseconds), .int(entry.sequence)]).count
        }
        guard updated == 1 else { throw StoreError("no unfinished audit record \(entry.sequence) to complete") }
    }

    /// One multi-row statement per chunk, all chunks in one transaction. Within a batch a
    /// request's completed record wins over its begun one (one row may be touched once per statement).
    public func archiveAudit(_ records: [AuditRecord]) throws {
        var latest: [String: AuditRecord] = [:]
        var order: [String] = []
        for r in records {
            if let seen = latest[r.requestId] {
                if r.completed || !seen.completed { latest[r.requestId] = r }
            } else {
                latest[r.requestId] = r
                order.append(r.requestId)
            }
        }
        let unique = order.compactMap { latest[$0] }
        guard !unique.isEmpty else { return }
        try pool.transaction { c in
            // PostgreSQL takes at most 65535 parameters a statement.
            for start in stride(from: 0, to: unique.count, by: 1000) {
                let chunk = unique[start..<min(start + 1000, unique.count)]
                let rows = (0..<chunk.count).map { Self.placeholders(from: $0 * Self.auditColumnCount + 1) }.joined(separator: ", ")
                try c.query("""
                    INSERT INTO audit (\(Self.auditColumns)) VALUES \(rows)
                    ON CONFLICT (request_id) DO UPDATE SET time = excluded.time, instance = excluded.instance, tenant = excluded.tenant,
                        user_id = excluded.user_id, client_app = excluded.client_app, method = excluded.method, tool = excluded.tool,
                        arguments_digest = excluded.arguments_digest, arguments = excluded.arguments, decision = excluded.decision,
                        reason = excluded.reason, http_status = excluded.http_status, upstream_status = excluded.upstream_status,
                        latency_ms = excluded.latency_ms, completed = true
                    WHERE NOT audit.completed AND excluded.completed
                    """, chunk.flatMap(Self.auditValues))
            }
        }
    }

    public func audit(since: Double, tenant: String?, limit: Int) throws -> [AuditRecord] {
        try pool.withConnection { c in
            let newest = "SELECT seq, \(Self.auditColumns) FROM audit WHERE time >= $1\(tenant == nil ? "" : " AND tenant = $3") ORDER BY seq DESC LIMIT $2"
            var params: [PGValue] = [.double(since), .int(Int64(limit))]
            if let tenant { params.append(.text(tenant)) }
            return try c.query("SELECT \(Self.auditColumns) FROM (\(newest)) AS newest ORDER BY seq", params).map { r in
                AuditRecord(time: r.double(0) ?? 0, requestId: r.text(1) ?? "", instance: r.text(2), tenant: r.text(3), user: r.text(4),
                            clientApp: r.text(5), method: r.text(6), tool: r.text(7), argumentsDigest: r.text(8), arguments: r.text(9),
                            decision: r.text(10) ?? "", reason: r.text(11), httpStatus: Int(r.int(12) ?? 0),
                            upstreamStatus: r.int(13).map { Int($0) }, latencyMilliseconds: r.double(14) ?? 0,
                            completed: r.bool(15) ?? true)
            }
        }
    }

    public func pruneAudit(before: Double) throws -> Int {
        try pool.withConnection { c in
            try c.query("DELETE FROM audit WHERE time < $1 RETURNING seq", [.double(before)]).count
        }
    }
}
