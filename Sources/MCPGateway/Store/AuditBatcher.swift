import Foundation

/// Group commit for the audit trail. Worker threads that append at the same time share
/// one write transaction, yet each `append` returns only once the transaction holding
/// its own record has committed, and throws if that transaction failed: a request is
/// answered only after it is on the record, as with one transaction per record.
///
/// No writer thread: the first thread to find no write in progress becomes the writer,
/// takes every record queued so far (its own included) and writes them; threads that
/// arrive meanwhile queue their records for the next batch and wait on the condition.
final class AuditBatcher: @unchecked Sendable {
    private final class Batch {
        var records: [AuditRecord] = []
        var done = false
        var error: Error?
    }

    private let condition = NSCondition()
    private var open = Batch()
    private var writing = false
    private let write: ([AuditRecord]) throws -> Void

    /// `write` puts every record of a batch on the record in one transaction, or throws.
    init(write: @escaping ([AuditRecord]) throws -> Void) {
        self.write = write
    }

    func append(_ record: AuditRecord) throws {
        condition.lock()
        let mine = open
        mine.records.append(record)
        // Invariant: a batch that is not done is either `open` or being written, and
        // `writing` stays set until the batch being written is marked done.
        while !mine.done {
            if writing {
                condition.wait()
                continue
            }
            writing = true
            let batch = open
            open = Batch()
            condition.unlock()
            var failure: Error?
            do { try write(batch.records) } catch { failure = error }
            condition.lock()
            batch.error = failure
            batch.done = true
            writing = false
            condition.broadcast()
        }
        let failure = mine.error
        condition.unlock()
        if let failure { throw failure }
    }
}
