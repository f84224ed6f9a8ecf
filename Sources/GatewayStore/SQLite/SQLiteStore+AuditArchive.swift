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
    /// without a Swift string or SQLite's own copy of it, and a tool call begun and completed
    /// within the batch is one finished row (`JournalBatch.rows`), not an insert and an update.
    public func archiveAudit(_ batch: JournalBatch) throws {
        let rows = batch.rows()
        guard !rows.isEmpty else { return }
        try batch.bytes.withUnsafeBufferPointer { base in
            try db.transaction(write: true) { db in
                var start = 0
                for size in Self.archiveStatementRows {
                    guard rows.count - start >= size else { continue }
                    let insert = try db.prepared(Self.multiRowArchiveSQL(rows: size))
                    while rows.count - start >= size {
                        try db.run(insert) { p in
                            for row in rows[start..<start + size] {
                                Self.bindColumns(subject: batch.frames[row.subject], outcome: batch.frames[row.outcome], in: base, to: &p)
                            }
                        }
                        start += size
                    }
                }
            }
        }
    }

    /// The archive insert for 32, 8 and 1 rows: a batch takes as few statements as it can (each
    /// statement's start and finish cost SQLite about as much as a row), in journal order;
    /// SQLite upserts the rows of one statement one after another, as separate statements would.
    /// Each text is built on first use: a CGI process moves one record and needs only the
    /// 1-row statement, `archiveSQL` (building all three at once cost it 0.34 M instructions).
    private static let archiveStatementRows = [32, 8, 1]
    private static let archiveSQL32 = multiRowInsert(rows: 32)
    private static let archiveSQL8 = multiRowInsert(rows: 8)

    private static func multiRowArchiveSQL(rows: Int) -> String {
        switch rows {
        case 32: return archiveSQL32
        case 8: return archiveSQL8
        default: return archiveSQL
        }
    }

    private static func multiRowInsert(rows n: Int) -> String {
        let row = ", (?" + String(repeating: ", ?", count: 15) + ")"
        return insertSQL + String(repeating: row, count: n - 1) + upsert
    }

    /// A row's fields in the column order of `insertSQL` (as `columnValues`): who asked for what
    /// from `s`, how it ended from `o` (the columns the upsert below takes from a completion).
    private static func bindColumns(subject s: JournalRecordView, outcome o: JournalRecordView, in base: UnsafeBufferPointer<UInt8>,
                                    to p: inout SQLiteDatabase.Binder) {
        p.double(s.time)
        p.text(s.requestId.bytes(in: base))
        p.text(s.tenant.bytes(in: base))
        p.text(s.user.bytes(in: base))
        p.text(s.clientApp.bytes(in: base))
        p.text(s.method.bytes(in: base))
        p.text(s.tool.bytes(in: base))
        p.text(s.argumentsDigest.bytes(in: base))
        p.text(s.arguments.bytes(in: base))
        p.text(o.decision.bytes(in: base))
        p.text(o.reason.bytes(in: base))
        p.int(o.httpStatus)
        p.int(o.upstreamStatus)
        p.double(o.latencyMilliseconds)
        p.text(s.instance.bytes(in: base))
        p.int(o.completed ? 1 : 0)
    }

    /// `insertSQL`, and a completed record replacing its request id's unfinished one.
    private static let archiveSQL = insertSQL + upsert

    private static let upsert = """

        ON CONFLICT (time, request_id) DO UPDATE SET decision = excluded.decision, reason = excluded.reason,
            http_status = excluded.http_status, upstream_status = excluded.upstream_status,
            latency_ms = excluded.latency_ms, completed = 1
        WHERE audit.completed = 0 AND excluded.completed = 1
        """
}
