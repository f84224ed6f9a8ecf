/// A run of consecutive frames of one journal, handed to `AuditArchive` as the journal's bytes
/// and where each record lies in them: an engine that can bind the bytes as they are (SQLite)
/// never turns a field into a Swift value; any other takes `records()`.
public struct JournalBatch {
    /// The whole journal as read; the frames point into it.
    let bytes: [UInt8]
    let frames: ArraySlice<JournalRecordView>

    public var count: Int { frames.count }

    /// The batch's records, in journal order.
    public func records() -> [AuditRecord] {
        bytes.withUnsafeBufferPointer { base in frames.map { $0.record(in: base) } }
    }
}

extension AuditArchive {
    public func archiveAudit(_ batch: JournalBatch) throws { try archiveAudit(batch.records()) }
}
