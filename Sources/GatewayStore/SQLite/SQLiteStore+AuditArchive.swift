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

    /// The same from a journal's bytes: each text column is bound where it lies in them,
    /// without a Swift string or SQLite's own copy of it.
    public func archiveAudit(_ batch: JournalBatch) throws {
        guard batch.count > 0 else { return }
        try batch.bytes.withUnsafeBufferPointer { base in
            try db.transaction(write: true) { db in
                let insert = try db.prepared(Self.archiveSQL)
                for frame in batch.frames {
                    try db.run(insert) { Self.bindColumns(of: frame, in: base, to: &$0) }
                }
            }
        }
    }

    /// A frame's fields in the column order of `insertSQL` (as `columnValues`).
    private static func bindColumns(of f: JournalRecordView, in base: UnsafeBufferPointer<UInt8>, to p: inout SQLiteDatabase.Binder) {
        p.double(f.time)
        p.text(f.requestId.bytes(in: base))
        p.text(f.tenant.bytes(in: base))
        p.text(f.user.bytes(in: base))
        p.text(f.clientApp.bytes(in: base))
        p.text(f.method.bytes(in: base))
        p.text(f.tool.bytes(in: base))
        p.text(f.argumentsDigest.bytes(in: base))
        p.text(f.arguments.bytes(in: base))
        p.text(f.decision.bytes(in: base))
        p.text(f.reason.bytes(in: base))
        p.int(f.httpStatus)
        p.int(f.upstreamStatus)
        p.double(f.latencyMilliseconds)
        p.text(f.instance.bytes(in: base))
        p.int(f.completed ? 1 : 0)
    }

    /// `insertSQL`, and a completed record replacing its request id's unfinished one.
    private static let archiveSQL = insertSQL + """

        ON CONFLICT (request_id) DO UPDATE SET decision = excluded.decision, reason = excluded.reason,
            http_status = excluded.http_status, upstream_status = excluded.upstream_status,
            latency_ms = excluded.latency_ms, completed = 1
        WHERE audit.completed = 0 AND excluded.completed = 1
        """
}
