#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The journals' backlog as `doctor`, `/ready` and `system_status` read it, from outside any
/// writer: counted from the drain's `WaitingCounts` where it has them, else from frame headers.
extension AuditJournal {
    /// What `doctor`, `/ready` and `system_status` report: journals waiting to be drained, the
    /// records in them and when the oldest was written, and torn tails kept aside.
    struct Status {
        var pendingJournals: [String]
        var pendingRecords = 0
        /// The time of the first record of the oldest waiting journal (nil when none waits).
        var oldestPendingTime: Double?
        var tornTails: [String]
    }

    /// Journals a drain has counted (`WaitingCounts`) cost nothing more here; the others (live
    /// writers' and those closed since the last drain round, all small) are counted from their frame headers.
    static func status(directory: String) -> Status {
        let names = Self.entries(of: directory) ?? []
        let torn = Self.entries(of: directory + "/" + tornDirectory) ?? []
        var status = Status(pendingJournals: names.filter { $0.hasSuffix(suffix) }.sorted(), tornTails: torn.sorted())
        let counted = WaitingCounts.read(directory: directory)
        for name in status.pendingJournals {
            let backlog = counted.files[name] ?? backlog(of: directory + "/" + name)
            status.pendingRecords += backlog.records
            if let first = backlog.firstTime, status.oldestPendingTime.map({ first < $0 }) ?? true { status.oldestPendingTime = first }
        }
        return status
    }

    static func backlog(of path: String) -> WaitingCounts.Entry {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return WaitingCounts.Entry(records: 0) }  // drained and deleted since the listing
        defer { close(fd) }
        return backlog(of: fd)
    }

    /// The whole frames of one journal and its first record's time, from the 12-byte frame headers
    /// and the first payload's leading time field only: no payload is read or checked, so a count
    /// costs one small read per frame however large the records are. A frame still in flight or
    /// damaged ends the count (the drain reports damage).
    static func backlog(of fd: Int32) -> WaitingCounts.Entry {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return WaitingCounts.Entry(records: 0) }
        let size = Int(st.st_size)
        var header = [UInt8](repeating: 0, count: JournalFrame.headerBytes)
        var at = 0, records = 0
        var firstTime: Double?
        while size - at >= JournalFrame.headerBytes {
            guard header.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, $0.count, off_t(at)) }) == header.count,
                  Array(header[0..<4]) == JournalFrame.magic else { break }
            let length = (0..<4).reduce(0) { $0 | Int(header[4 + $1]) << ($1 * 8) }
            guard length <= JournalFrame.maxPayloadBytes, size - at - JournalFrame.headerBytes >= length else { break }
            if records == 0 {
                var time = [UInt8](repeating: 0, count: 8)
                if length >= 8, time.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, 8, off_t(at + JournalFrame.headerBytes)) }) == 8 {
                    firstTime = Double(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(time[$1]) << UInt64($1 * 8) })
                }
            }
            records += 1
            at += JournalFrame.headerBytes + length
        }
        return WaitingCounts.Entry(records: records, firstTime: firstTime)
    }
}
