/// The audit trail: one record per MCP request (see `AuditRecord`).
public protocol AuditLog: AnyObject, Sendable {
    func appendAudit(_ record: AuditRecord) throws
    /// Writes the record of a tool call about to run (`completed` false), durable before the
    /// tool can act, so a process killed mid-call still leaves a trace of the attempt.
    func beginAudit(_ record: AuditRecord) throws -> AuditEntry
    /// Fills in what the answer established (decision, reason, statuses, latency) and marks
    /// the begun record completed.
    func completeAudit(_ entry: AuditEntry, with record: AuditRecord) throws
    /// Appends `record` only while `sample` has a token left (shared by every process of the
    /// site); the check and the insert are one transaction. Returns whether it was kept.
    func appendSampledAudit(_ record: AuditRecord, sample: RateBucket) throws -> Bool
    /// The newest `limit` records from `since` on, in order (oldest first); only one
    /// tenant's when `tenant` is set. The limit is applied in SQL so a tail reads a tail.
    func audit(since: Double, tenant: String?, limit: Int) throws -> [AuditRecord]
    /// Deletes records older than `before`; returns how many.
    func pruneAudit(before: Double) throws -> Int
    /// Retention as a request asks for it: pruned now, or by a background step the log runs
    /// anyway (a journal's drain), so no request waits for the store's write lock. Failures are
    /// left to the next time.
    func pruneAuditSoon(before: Double)
    /// At a serving process's start (`background` for a long-lived one) and exit: a log that
    /// writes somewhere faster first (a journal) moves what waits there into the store.
    func beginServing(background: Bool)
    func endServing()
}

extension AuditLog {
    /// A log that writes straight to its store has nothing to move.
    public func beginServing(background: Bool) {}
    public func endServing() {}
    public func pruneAuditSoon(before: Double) { _ = try? pruneAudit(before: before) }
}

/// A begun record, as the store that wrote it knows it.
public struct AuditEntry: Hashable, Sendable {
    public let sequence: Int64

    public init(sequence: Int64) { self.sequence = sequence }
}
