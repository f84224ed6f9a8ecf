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

    /// One row for the store: who asked for what from the frame at `subject`, how it ended
    /// from the frame at `outcome` (indices into `frames`; the same frame unless coalesced).
    struct Row: Equatable {
        let subject: Int
        var outcome: Int
    }

    /// The batch's rows in journal order. A begun record whose completion follows in the same
    /// batch becomes one finished row in the begun record's place: what inserting the one and
    /// then updating it with the other leaves. Every other frame is a row of its own, for the
    /// store's idempotent insert to place (a completion whose begun record went in an earlier batch).
    func rows() -> [Row] {
        var rows: [Row] = []
        rows.reserveCapacity(frames.count)
        bytes.withUnsafeBufferPointer { base in
            // A request (its time and id) -> the row of its first begun record, until its completion arrives.
            var unfinished: [RequestKey: Int] = [:]
            for i in frames.indices {
                let frame = frames[i]
                let id = frame.requestId.bytes(in: base) ?? UnsafeBufferPointer(rebasing: base[0..<0])
                if frame.completed {
                    if !unfinished.isEmpty, let row = unfinished.removeValue(forKey: RequestKey(time: frame.time, bytes: id)) {
                        rows[row].outcome = i
                        continue
                    }
                } else if unfinished[RequestKey(time: frame.time, bytes: id)] == nil {
                    unfinished[RequestKey(time: frame.time, bytes: id)] = rows.count
                }
                rows.append(Row(subject: i, outcome: i))
            }
        }
        return rows
    }

    /// A request as the store's unique index names it: the time it was received (both of its
    /// records carry it) and its id, by its bytes in the journal, valid while they are.
    private struct RequestKey: Hashable {
        let time: Double
        let bytes: UnsafeBufferPointer<UInt8>
        static func == (a: Self, b: Self) -> Bool { a.time.bitPattern == b.time.bitPattern && a.bytes.elementsEqual(b.bytes) }
        func hash(into hasher: inout Hasher) {
            hasher.combine(time.bitPattern)
            hasher.combine(bytes: UnsafeRawBufferPointer(bytes))
        }
    }
}

extension AuditArchive {
    public func archiveAudit(_ batch: JournalBatch) throws { try archiveAudit(batch.records()) }
}
