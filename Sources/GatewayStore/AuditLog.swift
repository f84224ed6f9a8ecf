/// The audit trail: one record per MCP request (see `AuditRecord`).
public protocol AuditLog: AnyObject, Sendable {
    func appendAudit(_ record: AuditRecord) throws
    /// Appends `record` only while `sample` has a token left (shared by every process of the
    /// site); the check and the insert are one transaction. Returns whether it was kept.
    func appendSampledAudit(_ record: AuditRecord, sample: RateBucket) throws -> Bool
    /// The newest `limit` records from `since` on, in order (oldest first); only one
    /// tenant's when `tenant` is set. The limit is applied in SQL so a tail reads a tail.
    func audit(since: Double, tenant: String?, limit: Int) throws -> [AuditRecord]
    /// Deletes records older than `before`; returns how many.
    func pruneAudit(before: Double) throws -> Int
}
