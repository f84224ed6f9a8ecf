extension SQLiteStore: AuditArchive {
    /// One transaction per batch. A request id already stored completed is left alone; a
    /// completed record replaces the unfinished one of its request id.
    public func archiveAudit(_ records: [AuditRecord]) throws {
        guard !records.isEmpty else { return }
        try db.transaction(write: true) { db in
            let insert = try db.prepared(Self.archiveSQL)
            for r in records { try db.run(insert, Self.columnValues(r)) }
        }
    }

    /// `insertSQL`, and a completed record replacing its request id's unfinished one.
    private static let archiveSQL = insertSQL + """

        ON CONFLICT (request_id) DO UPDATE SET decision = excluded.decision, reason = excluded.reason,
            http_status = excluded.http_status, upstream_status = excluded.upstream_status,
            latency_ms = excluded.latency_ms, completed = 1
        WHERE audit.completed = 0 AND excluded.completed = 1
        """
}
