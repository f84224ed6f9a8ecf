/// Where audit records come to rest when they are first written somewhere faster (a
/// per-process journal) and moved over in batches: the store's audit table.
public protocol AuditArchive: AnyObject, Sendable {
    /// Stores `records` in one transaction, idempotent by request id, so a batch moved
    /// again after a crash between the move and the journal's truncation changes nothing:
    /// a record whose request id is already stored completed is skipped, and a completed
    /// record replaces the unfinished one (`completed` false) of the same request id.
    func archiveAudit(_ records: [AuditRecord]) throws
    /// The same for a batch of journal frames (`JournalBatch`), as `archiveAudit(batch.records())`
    /// unless the engine stores the frames' bytes directly.
    func archiveAudit(_ batch: JournalBatch) throws
}
