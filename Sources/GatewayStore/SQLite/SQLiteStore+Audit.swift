extension SQLiteStore: AuditLog {
    public func appendAudit(_ r: AuditRecord) throws {
        _ = try db.transaction(write: true) { db in try Self.insert(r, in: db) }
    }

    public func appendSampledAudit(_ r: AuditRecord, sample: RateBucket) throws -> Bool {
        try db.transaction(write: true) { db in
            guard try Self.take([sample], now: r.time, in: db) == nil else { return false }
            _ = try Self.insert(r, in: db)
            return true
        }
    }

    public func beginAudit(_ r: AuditRecord) throws -> AuditEntry {
        var started = r
        started.completed = false
        return AuditEntry(sequence: try db.transaction(write: true) { db in try Self.insert(started, in: db) })
    }

    public func completeAudit(_ entry: AuditEntry, with r: AuditRecord) throws {
        let updated = try db.transaction(write: true) { db in
            try db.query("""
                UPDATE audit SET decision = ?, reason = ?, http_status = ?, upstream_status = ?, latency_ms = ?, completed = 1
                WHERE seq = ? AND completed = 0 RETURNING seq
                """, [.text(r.decision), .optional(r.reason), .int(Int64(r.httpStatus)),
                      r.upstreamStatus.map { .int(Int64($0)) } ?? .null, .double(r.latencyMilliseconds),
                      .int(entry.sequence)]).count
        }
        guard updated == 1 else { throw StoreError("no unfinished audit record \(entry.sequence) to complete") }
    }

    /// One row, inside the caller's write transaction; returns its sequence number.
    private static func insert(_ r: AuditRecord, in db: SQLiteDatabase) throws -> Int64 {
        let rows = try db.query(insertSQL + " RETURNING seq", columnValues(r))
        guard let sequence = rows.first?.first?.int else { throw StoreError("the audit insert returned no sequence number") }
        return sequence
    }

    /// One row's insert; `columnValues` gives its parameters.
    static let insertSQL = """
        INSERT INTO audit (time, request_id, tenant, user, client_app, method, tool, arguments_digest, arguments,
                           decision, reason, http_status, upstream_status, latency_ms, instance, completed)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    /// A record's values in the column order of the inserts (here and `archiveAudit`).
    static func columnValues(_ r: AuditRecord) -> [SQLiteDatabase.Value] {
        [.double(r.time), .text(r.requestId), .optional(r.tenant), .optional(r.user), .optional(r.clientApp),
         .optional(r.method), .optional(r.tool), .optional(r.argumentsDigest), .optional(r.arguments),
         .text(r.decision), .optional(r.reason), .int(Int64(r.httpStatus)),
         r.upstreamStatus.map { .int(Int64($0)) } ?? .null, .double(r.latencyMilliseconds), .optional(r.instance),
         .int(r.completed ? 1 : 0)]
    }

    public func audit(since: Double, tenant: String?, limit: Int) throws -> [AuditRecord] {
        try db.transaction(write: false) { db in
            let columns = "time, request_id, tenant, user, client_app, method, tool, arguments_digest, arguments, decision, reason, http_status, upstream_status, latency_ms, instance, completed"
            let newest = "SELECT seq, \(columns) FROM audit WHERE time >= ?\(tenant == nil ? "" : " AND tenant = ?") ORDER BY seq DESC LIMIT ?"
            var params: [SQLiteDatabase.Value] = [.double(since)]
            if let tenant { params.append(.text(tenant)) }
            params.append(.int(Int64(limit)))
            let rows = try db.query("SELECT \(columns) FROM (\(newest)) ORDER BY seq", params)
            return rows.map { r in
                AuditRecord(time: r[0].double ?? 0, requestId: r[1].text ?? "", instance: r[14].text, tenant: r[2].text, user: r[3].text,
                            clientApp: r[4].text, method: r[5].text, tool: r[6].text, argumentsDigest: r[7].text,
                            arguments: r[8].text, decision: r[9].text ?? "", reason: r[10].text,
                            httpStatus: Int(r[11].int ?? 0), upstreamStatus: r[12].int.map { Int($0) },
                            latencyMilliseconds: r[13].double ?? 0, completed: r[15].int != 0)
            }
        }
    }

    public func pruneAudit(before: Double) throws -> Int {
        try db.transaction(write: true) { db in
            try db.query("DELETE FROM audit WHERE time < ? RETURNING seq", [.double(before)]).count
        }
    }
}
