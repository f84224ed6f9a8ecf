import Foundation
@testable import GatewayStore
import XCTest
@testable import MCPGateway
import PostgresStore

/// The per-process audit journal: frames read back exactly, damage is found and kept aside,
/// drains move every record once (from several processes, after a crash), reads merge.
final class AuditJournalTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "audit-journal-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
    }

    var storePath: String { dir + "/store.db" }
    var journalDirectory: String { JournaledAuditLog.directory(forStore: storePath) }

    func log(_ store: SQLiteStore, batch: Int = 256) -> JournaledAuditLog {
        JournaledAuditLog(directory: journalDirectory, store: store, sampleLimiter: store, batchRecords: batch, drainInterval: 0.02)
    }

    static func record(_ id: String, time: Double = 1, completed: Bool = true) -> AuditRecord {
        AuditRecord(time: time, requestId: id, decision: "allowed", httpStatus: completed ? 200 : 0, latencyMilliseconds: 1.5,
                    completed: completed)
    }

    func journalFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: journalDirectory).filter { $0.hasSuffix(".journal") }
    }

    func storedIds() throws -> [String] {
        try SQLiteStore(path: storePath).audit(since: 0, tenant: nil, limit: 1_000_000).map(\.requestId)
    }

    // MARK: Framing

    func testFrameRoundTripKeepsEveryField() {
        let full = AuditRecord(time: 1_764_000_000.123456, requestId: "req-1", instance: "contoso", tenant: "t", user: "u",
                               clientApp: "app", method: "tools/call", tool: "whoami", argumentsDigest: "ab12",
                               arguments: "{\"q\":\"ünïcode \\\" \\n\"}", decision: "denied", reason: "forbidden",
                               httpStatus: 403, upstreamStatus: 502, latencyMilliseconds: 0.1 + 0.2, completed: false)
        let bare = Self.record("req-2")
        let reading = JournalFrame.decode(JournalFrame.encode(full) + JournalFrame.encode(bare))
        XCTAssertEqual(reading.records, [full, bare])
        XCTAssertNil(reading.damage)
    }

    func testATornLastFrameIsFoundAtEveryByteOffsetAndTheFramesBeforeItKept() {
        let first = JournalFrame.encode(Self.record("kept")), last = JournalFrame.encode(Self.record("torn"))
        for cut in 1..<last.count {
            let reading = JournalFrame.decode(first + last[0..<cut])
            XCTAssertEqual(reading.records.map(\.requestId), ["kept"], "cut at \(cut)")
            XCTAssertEqual(reading.validBytes, first.count, "cut at \(cut)")
            XCTAssertNotNil(reading.damage, "cut at \(cut)")
        }
    }

    func testABadChecksumOrLengthIsDamageNeverARecord() {
        let first = JournalFrame.encode(Self.record("kept")), last = JournalFrame.encode(Self.record("bad"))
        for offset in JournalFrame.headerBytes..<last.count {
            var flipped = last
            flipped[offset] ^= 0x20
            let reading = JournalFrame.decode(first + flipped)
            XCTAssertEqual(reading.records.map(\.requestId), ["kept"], "byte \(offset) flipped")
            XCTAssertEqual(reading.damage, "a frame checksum mismatch")
        }
        var huge = last
        huge[7] = 0x7f
        XCTAssertEqual(JournalFrame.decode(first + huge).damage, "a frame length of \(0x7f00_0000 + Int(last[4]) + Int(last[5]) << 8) bytes")
        var noMagic = last
        noMagic[0] = 0
        XCTAssertEqual(JournalFrame.decode(first + noMagic).damage, "no frame magic")
    }

    /// The drain binds a frame's text bytes as they are, so a checksummed frame whose text is
    /// not UTF-8 (no writer makes one) is damage, never a row.
    func testAFrameWhoseTextIsNotUTF8IsDamage() {
        let first = JournalFrame.encode(Self.record("kept"))
        var bad = JournalFrame.encode(Self.record("caf\u{e9}-1"))
        let at = try! XCTUnwrap(bad.firstIndex(of: 0xC3))
        bad[at + 1] = 0x28  // a lead byte followed by no continuation byte
        let crc = CRC32C.checksum(bad[JournalFrame.headerBytes...])
        for i in 0..<4 { bad[8 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        let reading = JournalFrame.decode(first + bad)
        XCTAssertEqual(reading.records.map(\.requestId), ["kept"])
        XCTAssertEqual(reading.damage, "a frame whose payload is not an audit record")
        XCTAssertEqual(JournalFrame.decode(JournalFrame.encode(Self.record("caf\u{e9}-\u{1F600}"))).records.map(\.requestId),
                       ["caf\u{e9}-\u{1F600}"])
    }

    /// What the drain hands the store: each field where it lies in the journal's bytes, read back
    /// the same as the records, batch by batch.
    func testABatchReadsItsFramesFromTheJournalBytes() {
        let full = AuditRecord(time: 1_764_000_000.5, requestId: "req-1", instance: "contoso", tenant: "t", user: "u",
                               clientApp: "app", method: "tools/call", tool: "whoami", argumentsDigest: "ab12", arguments: "{}",
                               decision: "denied", reason: "forbidden", httpStatus: 403, upstreamStatus: 502,
                               latencyMilliseconds: 2.25, completed: false)
        let records = [full, Self.record("req-2"), Self.record("")]
        let bytes = records.flatMap(JournalFrame.encode)
        let scan = JournalFrame.scan(bytes)
        XCTAssertNil(scan.damage)
        XCTAssertEqual(scan.validBytes, bytes.count)
        XCTAssertEqual(JournalBatch(bytes: bytes, frames: scan.frames[0..<3]).records(), records)
        XCTAssertEqual(JournalBatch(bytes: bytes, frames: scan.frames[1..<3]).records(), Array(records[1...]))
    }

    func testCRC32CMatchesTheStandardCheckValue() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
    }

    /// Eight bytes at a time and the tail byte by byte agree with the bit-by-bit definition at
    /// every length and alignment.
    func testCRC32CAgreesWithTheBitwiseDefinition() {
        func bitwise(_ bytes: ArraySlice<UInt8>) -> UInt32 {
            var crc: UInt32 = 0xFFFF_FFFF
            for b in bytes {
                crc ^= UInt32(b)
                for _ in 0..<8 { crc = crc & 1 != 0 ? 0x82F6_3B78 ^ (crc >> 1) : crc >> 1 }
            }
            return crc ^ 0xFFFF_FFFF
        }
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<80).map { _ in UInt8.random(in: 0...255, using: &generator) }
        for start in 0..<8 {
            for end in start...bytes.count {
                XCTAssertEqual(CRC32C.checksum(bytes[start..<end]), bitwise(bytes[start..<end]), "bytes \(start)..<\(end)")
            }
        }
    }

    /// A database at the schema just before the migration whose text contains `marker`.
    func schema(before marker: String) throws -> SQLiteDatabase {
        let db = try SQLiteDatabase(path: storePath)
        let earlier = try XCTUnwrap(SQLiteStore.migrations.firstIndex { $0.contains(marker) })
        for (i, sql) in SQLiteStore.migrations.prefix(earlier).enumerated() {
            try db.execute(sql)
            try db.execute("PRAGMA user_version = \(i + 1)")
        }
        return db
    }

    func testTheRequestIdIndexMigrationKeepsEveryRowOfARepeatedId() throws {
        let db = try schema(before: "CREATE UNIQUE INDEX audit_request_id")
        for _ in 0..<2 {
            try db.execute("INSERT INTO audit (time, request_id, decision, http_status, latency_ms) VALUES (1, 'twice', 'allowed', 200, 1)")
        }
        let ids = try SQLiteStore(path: storePath).audit(since: 0, tenant: nil, limit: 10).map(\.requestId)
        XCTAssertEqual(ids, ["twice#1", "twice"])
    }

    /// The store of the schema before it, rows and all, gets the index on (time, request_id) in place of
    /// the one on request_id alone: a request's begun and completed records still make one row, and a
    /// request id that comes again at another time is another request.
    func testTheTimeAndRequestIdIndexMigrationKeepsRowsAndOneRowPerRequest() throws {
        let db = try schema(before: "audit_time_request_id")
        try db.execute("INSERT INTO audit (time, request_id, decision, http_status, latency_ms) VALUES (1, 'kept', 'allowed', 200, 1)")
        let store = try SQLiteStore(path: storePath)
        let indexes = try store.db.transaction(write: false) { try $0.query("SELECT name FROM pragma_index_list('audit') ORDER BY name") }
        XCTAssertEqual(indexes.map { $0.first?.text }, ["audit_tenant_time", "audit_time_request_id"])
        let a = Self.record("a", time: 5)
        var begun = a
        begun.completed = false
        begun.reason = "in progress"
        let first = try drained([begun, Self.record("a", time: 9)], batch: 256)
        XCTAssertEqual(first.filter { $0.requestId == "a" }.map(\.time).sorted(), [5, 9], "one id at two times: two requests")
        let second = try drained([Self.completion(of: begun)], batch: 256)
        XCTAssertEqual(second.filter { $0.time == 5 }, [Self.completion(of: begun)], "completed in place")
        XCTAssertEqual(second.map(\.requestId).sorted(), ["a", "a", "kept"])
    }

    // MARK: Files and drains

    func testTheJournalIsOwnerOnlyAndDrainedIntoTheStore() throws {
        let store = try SQLiteStore(path: storePath)
        let log = log(store)
        for i in 0..<10 { try log.appendAudit(Self.record("r\(i)", time: Double(i))) }
        let files = try journalFiles()
        XCTAssertEqual(files.count, 1)
        var st = stat()
        XCTAssertEqual(lstat(journalDirectory + "/" + files[0], &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
        XCTAssertEqual(try storedIds(), [])
        XCTAssertEqual(try log.drainAll(), 10)
        XCTAssertEqual(try storedIds(), (0..<10).map { "r\($0)" })
        XCTAssertEqual(try journalFiles(), [])
    }

    /// The drain thread's pacing: after each batch a pause as long as the batch's CPU time (at
    /// most 5 ms), for the round's first `pacedRecords` records only; a backlog runs flat out.
    func testPacingPausesAsLongAsEachBatchTookUntilItsRecordsAreSpent() {
        var clock: UInt64 = 0
        var pauses: [UInt64] = []
        let pacing = DrainPacing(pacedRecords: 600, cpuNanoseconds: { clock }, pause: { pauses.append($0) })
        for cost: UInt64 in [1_200_000, 9_000_000, 700_000, 800_000] {
            pacing.batchBegins()
            clock += cost
            pacing.batchEnded(records: 256)
        }
        // 256 + 256 + 256 records reach 600: the third batch is the last one paced.
        XCTAssertEqual(pauses, [1_200_000, DrainPacing.longestPauseNanoseconds, 700_000])
    }

    /// A paced drain moves every record of several journals, in order, and pauses once a batch.
    func testAPacedDrainMovesEverythingAndPausesOnceABatch() throws {
        let store = try SQLiteStore(path: storePath)
        let journal = AuditJournal(directory: journalDirectory)
        for i in 0..<1000 { _ = try journal.append(Self.record(String(format: "r%04d", i), time: Double(i))) }
        var pauses = 0
        let pacing = DrainPacing(pacedRecords: 100_000, pause: { _ in pauses += 1 })
        XCTAssertEqual(try journal.drain(into: store, batchRecords: 128, pacing: pacing), 1000)
        XCTAssertEqual(pauses, 8)  // 7 full batches of 128 and one of 104
        XCTAssertEqual(try storedIds(), (0..<1000).map { String(format: "r%04d", $0) })
        XCTAssertEqual(try journalFiles(), [])
    }

    /// The drain binds the journal's bytes straight into the store's columns: every field, an
    /// empty text apart from none, and non-ASCII text arrive as written.
    func testADrainedRecordKeepsEveryFieldInTheStore() throws {
        let store = try SQLiteStore(path: storePath)
        let log = log(store)
        let full = AuditRecord(time: 1_764_000_000.123456, requestId: "req-\u{e9}", instance: "contoso", tenant: "t", user: "",
                               clientApp: "app", method: "tools/call", tool: "whoami", argumentsDigest: "ab12",
                               arguments: "{\"q\":\"\u{fc}n\u{ef}code \\\" \\n\"}", decision: "denied", reason: "forbidden",
                               httpStatus: 403, upstreamStatus: 502, latencyMilliseconds: 0.1 + 0.2, completed: true)
        let bare = AuditRecord(time: 2, requestId: "bare", decision: "allowed", httpStatus: 200, latencyMilliseconds: 1,
                               completed: false)
        try log.appendAudit(full)
        _ = try log.beginAudit(bare)
        XCTAssertEqual(try log.drainAll(), 2)
        XCTAssertEqual(try SQLiteStore(path: storePath).audit(since: 0, tenant: nil, limit: 10), [full, bare])
    }

    func testReadsMergeJournalAndStoreInOrderWithoutDuplicates() throws {
        let store = try SQLiteStore(path: storePath)
        let log = log(store)
        try log.appendAudit(Self.record("a", time: 1))
        _ = try log.beginAudit(Self.record("b", time: 2, completed: false))
        try log.drainAll()
        // Now in the journal only: b's completion, c; in both (drained, not yet deleted): none.
        try log.completeAudit(AuditEntry(sequence: 0), with: Self.record("b", time: 2))
        try log.appendAudit(Self.record("c", time: 3))
        let merged = try log.audit(since: 0, tenant: nil, limit: 10)
        XCTAssertEqual(merged.map(\.requestId), ["a", "b", "c"])
        XCTAssertEqual(merged.map(\.completed), [true, true, true])
        XCTAssertEqual(try log.audit(since: 0, tenant: nil, limit: 2).map(\.requestId), ["b", "c"])
        XCTAssertEqual(try log.audit(since: 2.5, tenant: nil, limit: 10).map(\.requestId), ["c"])
        // Another process reading (a fresh log on the same store) sees the same.
        let reader = self.log(try SQLiteStore(path: storePath))
        XCTAssertEqual(try reader.audit(since: 0, tenant: nil, limit: 10), merged)
    }

    func testARedrainAfterACrashBeforeTheDeleteChangesNothing() throws {
        let store = try SQLiteStore(path: storePath)
        do {
            let log = log(store)
            _ = try log.beginAudit(Self.record("begun", time: 1, completed: false))
            try log.completeAudit(AuditEntry(sequence: 0), with: Self.record("begun", time: 1))
            try log.appendAudit(Self.record("plain", time: 2))
            _ = try log.beginAudit(Self.record("unfinished", time: 3, completed: false))
        }
        let name = try XCTUnwrap(try journalFiles().first)
        let saved = try Data(contentsOf: URL(fileURLWithPath: journalDirectory + "/" + name))
        let drainer = log(store)
        XCTAssertEqual(try drainer.drainAll(), 4)
        // The crash: the batch was archived, the journal not yet deleted.
        try saved.write(to: URL(fileURLWithPath: journalDirectory + "/" + name))
        XCTAssertEqual(try drainer.drainAll(), 4)
        let stored = try SQLiteStore(path: storePath).audit(since: 0, tenant: nil, limit: 100)
        XCTAssertEqual(stored.map(\.requestId), ["begun", "plain", "unfinished"])
        XCTAssertEqual(stored.map(\.completed), [true, true, false])
        // An unfinished record arriving after the completed one does not undo it.
        try store.archiveAudit([Self.record("begun", time: 1, completed: false)])
        XCTAssertEqual(try SQLiteStore(path: storePath).audit(since: 0, tenant: nil, limit: 100).map(\.completed), [true, true, false])
    }

    // MARK: Begun and completed records in batches

    static func begun(_ id: String, time: Double) -> AuditRecord {
        AuditRecord(time: time, requestId: id, tenant: "t", user: "u", method: "tools/call", tool: "whoami",
                    argumentsDigest: "d-\(id)", decision: "allowed", reason: "in progress", httpStatus: 0, latencyMilliseconds: 0,
                    completed: false)
    }

    static func completion(of begun: AuditRecord, status: Int = 200) -> AuditRecord {
        var r = begun
        r.reason = status == 200 ? nil : "upstream failed"
        r.httpStatus = status
        r.upstreamStatus = status == 200 ? nil : 502
        r.latencyMilliseconds = 4.5
        r.completed = true
        return r
    }

    /// A journal as a process that stopped would leave it (no lock held): an orphan to drain.
    func leaveJournal(_ records: [AuditRecord], named name: String = "h-1-1-1.journal") throws {
        try FileManager.default.createDirectory(atPath: journalDirectory, withIntermediateDirectories: true)
        try Data(records.flatMap(JournalFrame.encode)).write(to: URL(fileURLWithPath: journalDirectory + "/" + name))
    }

    func drained(_ records: [AuditRecord], batch: Int) throws -> [AuditRecord] {
        try leaveJournal(records)
        let store = try SQLiteStore(path: storePath)
        XCTAssertEqual(try log(store, batch: batch).drainAll(), records.count)
        return try store.audit(since: 0, tenant: nil, limit: 100)
    }

    func testABegunRecordCompletedInTheSameBatchIsOneFinishedRow() throws {
        let a = Self.begun("a", time: 1), c = Self.begun("c", time: 3)
        let journal = [a, Self.record("b", time: 2), c, Self.completion(of: a), Self.completion(of: c, status: 502)]
        let bytes = journal.flatMap(JournalFrame.encode)
        let scan = JournalFrame.scan(bytes)
        XCTAssertEqual(JournalBatch(bytes: bytes, frames: scan.frames[0..<5]).rows(),
                       [.init(subject: 0, outcome: 3), .init(subject: 1, outcome: 1), .init(subject: 2, outcome: 4)])
        // Split: the completion of c is in the next batch, where it is a row of its own.
        XCTAssertEqual(JournalBatch(bytes: bytes, frames: scan.frames[0..<4]).rows(),
                       [.init(subject: 0, outcome: 3), .init(subject: 1, outcome: 1), .init(subject: 2, outcome: 2)])
        XCTAssertEqual(JournalBatch(bytes: bytes, frames: scan.frames[4..<5]).rows(), [.init(subject: 4, outcome: 4)])
        let stored = try drained(journal, batch: 256)
        XCTAssertEqual(stored, [Self.completion(of: a), Self.record("b", time: 2), Self.completion(of: c, status: 502)])
    }

    /// Batches of one frame each (an insert, then an update, per tool call) leave what one
    /// coalesced batch leaves, row for row, in the same order.
    func testBegunAndCompletedInSeparateBatchesLeaveTheSameRows() throws {
        let a = Self.begun("a", time: 1), c = Self.begun("c", time: 3)
        let journal = [a, Self.record("b", time: 2), c, Self.completion(of: c, status: 502), Self.completion(of: a),
                       Self.begun("left-open", time: 4)]
        let coalesced = try drained(journal, batch: 256)
        try FileManager.default.removeItem(atPath: storePath)
        let separate = try drained(journal, batch: 1)
        XCTAssertEqual(separate, coalesced)
        XCTAssertEqual(coalesced.map(\.requestId), ["a", "b", "c", "left-open"])
        XCTAssertEqual(coalesced.map(\.completed), [true, true, true, false])
        XCTAssertEqual(coalesced[2], Self.completion(of: c, status: 502))
    }

    /// A repeated begun record or completion within a batch changes nothing the first did not.
    func testRepeatsWithinABatchAreLeftToTheIdempotentInsert() throws {
        let a = Self.begun("a", time: 1)
        let stored = try drained([a, a, Self.completion(of: a), Self.completion(of: a, status: 502), a], batch: 256)
        XCTAssertEqual(stored, [Self.completion(of: a)])
    }

    /// A batch long enough for the multi-row inserts (32 and 8 rows a statement, then single
    /// rows), with interleaved tool calls, repeats and a request id taken again at another time: the
    /// rows are those of one statement per frame.
    func testAMultiRowBatchLeavesWhatOneStatementPerFrameLeaves() throws {
        var journal: [AuditRecord] = []
        var open: [AuditRecord] = []
        for i in 0..<60 {
            switch i % 5 {
            case 0, 1:
                let b = Self.begun("call-\(i)", time: Double(i))
                journal.append(b)
                open.append(b)
            case 2: journal.append(Self.completion(of: open.removeFirst(), status: i % 2 == 0 ? 200 : 502))
            case 3: journal.append(Self.record(i % 10 == 3 ? "call-0" : "plain-\(i)", time: Double(i)))
            default: journal.append(open.first.map { Self.completion(of: $0) } ?? Self.record("plain-\(i)", time: Double(i)))
            }
        }
        let multiRow = try drained(journal, batch: 256)
        try FileManager.default.removeItem(atPath: storePath)
        let oneByOne = try drained(journal, batch: 1)
        XCTAssertEqual(multiRow, oneByOne)
        XCTAssertEqual(multiRow.count, Set(journal.map { "\($0.time) \($0.requestId)" }).count, "a row per request: its time and id")
        XCTAssertTrue(multiRow.contains { !$0.completed })
    }

    /// PostgreSQL takes a batch as records (the protocol's default) and keeps one row per
    /// request id itself: a journal drained into it, in one batch or frame by frame, leaves the
    /// rows the SQLite drain leaves.
    func testAJournalDrainsIntoPostgreSQLAsIntoSQLite() throws {
        let a = Self.begun("a", time: 1), c = Self.begun("c", time: 3)
        let journal = [a, Self.record("b", time: 2), c, Self.completion(of: c, status: 502), Self.completion(of: a),
                       Self.begun("left-open", time: 4)]
        let expected = try drained(journal, batch: 256)
        for batch in [256, 2, 1] {
            let store = try PostgresStore(settings: try freshPostgresSettings())
            try leaveJournal(journal)
            let log = JournaledAuditLog(directory: journalDirectory, store: store, sampleLimiter: store, batchRecords: batch,
                                        drainInterval: 0.02)
            XCTAssertEqual(try log.drainAll(), journal.count)
            XCTAssertEqual(try store.audit(since: 0, tenant: nil, limit: 100), expected, "batch \(batch)")
        }
    }

    /// A crash after the batch with the begun record was stored and before the journal was
    /// deleted: the next drain (any batch size) moves the whole journal again, the completion
    /// finishes the stored row, and nothing is stored twice.
    func testACrashBetweenTheBegunAndTheCompletedBatchIsFinishedByTheRedrain() throws {
        let a = Self.begun("a", time: 1)
        let store = try SQLiteStore(path: storePath)
        XCTAssertEqual(try drained([a, Self.record("b", time: 2)], batch: 2).map(\.completed), [false, true])
        try leaveJournal([a, Self.record("b", time: 2), Self.completion(of: a), Self.record("d", time: 4)])
        for batch in [256, 2] {
            XCTAssertEqual(try log(store, batch: batch).drainAll(), 4)
            XCTAssertEqual(try store.audit(since: 0, tenant: nil, limit: 100),
                           [Self.completion(of: a), Self.record("b", time: 2), Self.record("d", time: 4)], "batch \(batch)")
            try leaveJournal([a, Self.record("b", time: 2), Self.completion(of: a), Self.record("d", time: 4)])
        }
    }

    /// The process dies after its begun record was moved and before the tool's answer: the row
    /// stays unfinished, and a later journal's completion of another request leaves it so.
    func testABegunRecordWhoseProcessDiedStaysUnfinished() throws {
        let a = Self.begun("a", time: 1)
        XCTAssertEqual(try drained([a], batch: 256), [a])
        let b = Self.begun("b", time: 2)
        XCTAssertEqual(try drained([b, Self.completion(of: b)], batch: 256), [a, Self.completion(of: b)])
    }

    func testOrphansArePickedUpOnlyOnceTheirWriterIsGone() throws {
        let store = try SQLiteStore(path: storePath)
        var writer: JournaledAuditLog? = log(store)
        try writer?.appendAudit(Self.record("w1"))
        let drainer = log(store)
        // The writer is alive (holds its lock): its journal is not touched.
        XCTAssertEqual(try drainer.drainAll(), 0)
        XCTAssertEqual(try journalFiles().count, 1)
        XCTAssertEqual(try drainer.audit(since: 0, tenant: nil, limit: 10).map(\.requestId), ["w1"])
        writer = nil
        XCTAssertEqual(try drainer.drainAll(), 1)
        XCTAssertEqual(try storedIds(), ["w1"])
        XCTAssertEqual(try journalFiles(), [])
    }

    func testATornTailIsReportedAndKeptAsideAndTheFramesBeforeItMoved() throws {
        let store = try SQLiteStore(path: storePath)
        do {
            let log = log(store)
            try log.appendAudit(Self.record("before-1"))
            try log.appendAudit(Self.record("before-2"))
        }
        let name = try XCTUnwrap(try journalFiles().first)
        let torn = Array(JournalFrame.encode(Self.record("torn")).prefix(20))
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: journalDirectory + "/" + name))
        handle.seekToEndOfFile()
        handle.write(Data(torn))
        handle.closeFile()
        XCTAssertEqual(AuditJournal.status(directory: journalDirectory).pendingJournals, [name])
        XCTAssertEqual(try log(store).drainAll(), 2)
        XCTAssertEqual(try storedIds(), ["before-1", "before-2"])
        let status = AuditJournal.status(directory: journalDirectory)
        XCTAssertEqual(status.pendingJournals, [])
        XCTAssertEqual(status.tornTails, [name + ".torn"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: journalDirectory + "/torn/" + name + ".torn")), Data(torn))
    }

    func testStatusCountsWaitingRecordsAndTheOldestFromFrameHeadersOnly() throws {
        let store = try SQLiteStore(path: storePath)
        XCTAssertEqual(JournaledAuditLog.status(forStore: storePath).pendingRecords, 0)
        XCTAssertNil(JournaledAuditLog.status(forStore: storePath).oldestPendingTime)
        do {
            let log = log(store)
            try log.appendAudit(Self.record("w1", time: 1_000))
            try log.appendAudit(Self.record("w2", time: 900))  // written later with an earlier time: the first frame counts
            try log.appendAudit(Self.record("w3", time: 1_100))
        }
        // A second journal, as another process would leave it, plus a frame still in flight at its end.
        usleep(2_000)  // a journal's name carries its writer's start in milliseconds
        do {
            let other = log(store)
            try other.appendAudit(Self.record("o1", time: 800))
        }
        let names = try journalFiles()
        XCTAssertEqual(names.count, 2)
        let inFlight = Array(JournalFrame.encode(Self.record("in-flight", time: 1)).prefix(30))
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: journalDirectory + "/" + names[1]))
        handle.seekToEndOfFile()
        handle.write(Data(inFlight))
        handle.closeFile()
        let status = JournaledAuditLog.status(forStore: storePath)
        XCTAssertEqual(status.pendingJournals, 2)
        XCTAssertEqual(status.pendingRecords, 4, "only whole frames count")
        XCTAssertEqual(status.oldestPendingTime, 800)
        XCTAssertEqual(status.oldestPendingAge(now: 830), 30)
        _ = try log(store).drainAll()
        let drained = JournaledAuditLog.status(forStore: storePath)
        XCTAssertEqual(drained.pendingRecords, 0)
        XCTAssertNil(drained.oldestPendingAge(now: 830))
    }

    func testDoctorFailsTheStoreWhileATornTailIsKeptAside() throws {
        let f = try GatewayFixture()
        let journal = JournaledAuditLog.directory(forStore: f.instance.config.resolvedStorePath)
        func storeCheck() -> Doctor.Check? {
            Doctor(config: f.instance.config, http: DoctorTests.FakeEntra(jwks: [:])).run().first { $0.name == "shared store" }
        }
        XCTAssertEqual(storeCheck()?.outcome, .pass)
        try FileManager.default.createDirectory(atPath: journal + "/torn", withIntermediateDirectories: true)
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: journal + "/torn/h-1-1-1.journal.torn"))
        let check = try XCTUnwrap(storeCheck())
        XCTAssertEqual(check.outcome, .fail)
        XCTAssertTrue(check.detail.contains("1 damaged audit journal tail(s) kept in \(journal)/torn (first: h-1-1-1.journal.torn)"),
                      check.detail)
    }

    func testAJournalSymlinkIsNeverFollowed() throws {
        let store = try SQLiteStore(path: storePath)
        let target = dir + "/elsewhere"
        try Data(JournalFrame.encode(Self.record("planted"))).write(to: URL(fileURLWithPath: target))
        try FileManager.default.createDirectory(atPath: journalDirectory, withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: journalDirectory + "/x-1-1-1.journal", withDestinationPath: target)
        let log = log(store)
        XCTAssertEqual(try log.audit(since: 0, tenant: nil, limit: 10), [])
        XCTAssertEqual(try log.drainAll(), 0)
        XCTAssertEqual(try storedIds(), [])
    }

    /// ENOSPC on a real (tiny) file system: the write fails, the caller is told, and the journal
    /// holds exactly the records that were acknowledged, with no torn frame after them.
    func testAFullDiskRefusesTheRecordAndLeavesNoTornFrame() throws {
        guard geteuid() == 0 else { throw XCTSkip("mounting a small tmpfs needs root") }
        try FileManager.default.createDirectory(atPath: journalDirectory, withIntermediateDirectories: false)
        guard mount("tmpfs", journalDirectory, "tmpfs", 0, "size=16k") == 0 else {
            throw XCTSkip("cannot mount a tmpfs here: \(String(cString: strerror(errno)))")
        }
        defer { umount(journalDirectory) }
        let store = try SQLiteStore(path: storePath)
        let log = log(store)
        var acknowledged: [String] = []
        var failure: Error?
        let bulky = String(repeating: "x", count: 700)
        for i in 0..<1000 {
            var r = Self.record("r\(i)")
            r.arguments = bulky
            do { try log.appendAudit(r); acknowledged.append(r.requestId) } catch { failure = error; break }
        }
        let error = try XCTUnwrap(failure)
        XCTAssertTrue("\(error)".contains("No space left on device"), "\(error)")
        XCTAssertGreaterThan(acknowledged.count, 5)
        let name = try XCTUnwrap(try journalFiles().first)
        let reading = JournalFrame.decode(Array(try Data(contentsOf: URL(fileURLWithPath: journalDirectory + "/" + name))))
        XCTAssertNil(reading.damage)
        XCTAssertEqual(reading.records.map(\.requestId), acknowledged)
    }

    /// Through the whole path: a request whose record meets a full disk is refused with 503, as
    /// one whose store write fails; the tool is not run.
    func testARequestWhoseRecordMeetsAFullDiskIsRefused503() throws {
        guard geteuid() == 0 else { throw XCTSkip("mounting a small tmpfs needs root") }
        let f = try GatewayFixture()
        let journal = JournaledAuditLog.directory(forStore: f.instance.config.resolvedStorePath)
        try FileManager.default.createDirectory(atPath: journal, withIntermediateDirectories: false)
        guard mount("tmpfs", journal, "tmpfs", 0, "size=4k") == 0 else {
            throw XCTSkip("cannot mount a tmpfs here: \(String(cString: strerror(errno)))")
        }
        defer { umount(journal) }
        let filler = open(journal + "/filler", O_WRONLY | O_CREAT | O_EXCL, 0o600)
        XCTAssertGreaterThanOrEqual(filler, 0)
        let page = [UInt8](repeating: 0, count: 4096)
        while page.withUnsafeBytes({ write(filler, $0.baseAddress, $0.count) }) > 0 {}
        XCTAssertEqual(errno, ENOSPC)
        close(filler)
        let call = GatewayFixture.legacyBody("tools/call", params: ["name": "whoami", "arguments": [:]])
        let r = f.post(call, token: try f.token())
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.header("Retry-After"), "5")
        XCTAssertEqual(f.post(GatewayFixture.legacyBody("ping"), token: try f.token()).status, 503)
    }

    // MARK: One drainer at a time

    /// Takes the site's drain lock as another process's drainer would (a separate open file).
    func holdDrainLock() throws -> Int32 {
        let fd = open(journalDirectory + "/" + AuditJournal.drainLockName, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        XCTAssertEqual(flock(fd, LOCK_EX | LOCK_NB), 0)
        return fd
    }

    /// While another process drains, a drain round only closes this process's journal to writing
    /// and leaves it to that one: nothing lost, reads still see it, and any drainer moves it after.
    func testWhileAnotherProcessDrainsARoundLeavesItsJournalToIt() throws {
        let store = try SQLiteStore(path: storePath)
        let writer = log(store)
        for i in 0..<3 { try writer.appendAudit(Self.record("w\(i)", time: Double(i))) }
        let other = try holdDrainLock()
        XCTAssertEqual(try writer.journal.drain(into: store, batchRecords: 256), 0)
        let name = try XCTUnwrap(try journalFiles().first)
        let fd = open(journalDirectory + "/" + name, O_RDONLY)
        defer { close(fd) }
        XCTAssertEqual(flock(fd, LOCK_EX | LOCK_NB), 0, "closed to writing: unlocked for the drainer")
        flock(fd, LOCK_UN)
        XCTAssertEqual(try writer.audit(since: 0, tenant: nil, limit: 10).map(\.requestId), ["w0", "w1", "w2"])
        XCTAssertEqual(try storedIds(), [])
        // The next record goes to a new journal, still locked by its writer.
        try writer.appendAudit(Self.record("w3", time: 3))
        XCTAssertEqual(try journalFiles().count, 2)
        close(other)
        let drainer = log(try SQLiteStore(path: storePath))
        XCTAssertEqual(try drainer.drainAll(), 3, "the closed journal, not the one being written")
        XCTAssertEqual(try writer.drainAll(), 1)
        XCTAssertEqual(try storedIds(), ["w0", "w1", "w2", "w3"])
        XCTAssertEqual(try journalFiles(), [])
    }

    func testAForegroundDrainWaitsForTheOtherDrainerThenMovesEverything() throws {
        let store = try SQLiteStore(path: storePath)
        let writer = log(store)
        try writer.appendAudit(Self.record("at-exit"))
        let other = try holdDrainLock()
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.1) { close(other) }
        XCTAssertEqual(try writer.drainAll(), 1)
        XCTAssertEqual(try storedIds(), ["at-exit"])
    }

    /// A process's journals are moved in the order it wrote them, also past its ninth.
    func testJournalsAreDrainedInWriteOrder() {
        let names = ["h-7-100-10.journal", "h-7-100-9.journal", "h-7-100-2.journal.new", "h-7-100-1.journal", "g-9-5-3.journal"]
        XCTAssertEqual(names.sorted(by: AuditJournal.writeOrder),
                       ["g-9-5-3.journal", "h-7-100-1.journal", "h-7-100-2.journal.new", "h-7-100-9.journal", "h-7-100-10.journal"])
    }

    /// The store stays locked: the drain fails, counts each waiting journal once into the waiting
    /// counts, and the probes (`/ready`, `system_status`) read those, not the journals' frames.
    func testAFailedDrainKeepsWaitingCountsThatTheProbesRead() throws {
        let store = try SQLiteStore(path: storePath, busyTimeoutMilliseconds: 50)
        let first = log(store)
        for i in 0..<3 { try first.appendAudit(Self.record("f\(i)", time: 1_000 + Double(i))) }
        usleep(2_000)  // a journal's name carries its writer's start in milliseconds
        let second = log(store)
        for i in 0..<2 { try second.appendAudit(Self.record("s\(i)", time: 900 + Double(i))) }
        let holder = try SQLiteDatabase(path: storePath)
        try holder.execute("BEGIN IMMEDIATE")
        XCTAssertThrowsError(try second.journal.drain(into: store, batchRecords: 256))
        XCTAssertThrowsError(try first.journal.drain(into: store, batchRecords: 256))
        let names = try journalFiles().sorted(by: AuditJournal.writeOrder)
        XCTAssertEqual(names.count, 2)
        let counts = WaitingCounts.read(directory: journalDirectory)
        XCTAssertEqual(counts.files, [names[0]: .init(records: 3, firstTime: 1_000), names[1]: .init(records: 2, firstTime: 900)])
        var st = stat()
        XCTAssertEqual(lstat(journalDirectory + "/" + WaitingCounts.fileName, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
        // Overwritten in place (same size, no frames left): the probe still answers from the counts.
        let path = journalDirectory + "/" + names[0]
        let size = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        let saved = try Data(contentsOf: URL(fileURLWithPath: path))
        try Data(count: size).write(to: URL(fileURLWithPath: path))
        let status = JournaledAuditLog.status(forStore: storePath)
        XCTAssertEqual(status.pendingJournals, 2)
        XCTAssertEqual(status.pendingRecords, 5)
        XCTAssertEqual(status.oldestPendingTime, 900)
        try saved.write(to: URL(fileURLWithPath: path))
        try holder.execute("COMMIT")
        XCTAssertEqual(try first.drainAll(), 5)
        XCTAssertEqual(WaitingCounts.read(directory: journalDirectory).files, [:])
        XCTAssertEqual(JournaledAuditLog.status(forStore: storePath).pendingRecords, 0)
        XCTAssertEqual(Set(try storedIds()), ["f0", "f1", "f2", "s0", "s1"])
    }

    /// With the drain thread running, retention asked for by a request is left to that thread:
    /// the request does not wait for the store's write lock, and the records go soon after.
    func testRetentionAskedForByARequestIsLeftToTheDrainThread() throws {
        let store = try SQLiteStore(path: storePath, busyTimeoutMilliseconds: 3_000)
        try store.appendAudit(Self.record("old", time: 10))
        let log = JournaledAuditLog(directory: journalDirectory, store: store, sampleLimiter: store, drainInterval: 0.05)
        log.beginServing(background: true)
        let holder = try SQLiteDatabase(path: storePath)
        try holder.execute("BEGIN IMMEDIATE")
        let started = Date()
        log.pruneAuditSoon(before: 100)
        XCTAssertLessThan(Date().timeIntervalSince(started), 1, "not waiting for the write lock")
        try holder.execute("COMMIT")
        let deadline = Date(timeIntervalSinceNow: 10)
        while try storedIds() == ["old"] && Date() < deadline { usleep(10_000) }
        XCTAssertEqual(try storedIds(), [])
    }

    /// An idle drain thread sleeps until its idle wake-up (25 intervals: 5 s here), and the
    /// first record written wakes it: the record is in the store within about one interval,
    /// long before that scan would have come round.
    func testTheFirstRecordAfterAnIdleSpellWakesTheDrainThread() throws {
        let store = try SQLiteStore(path: storePath)
        let log = JournaledAuditLog(directory: journalDirectory, store: store, sampleLimiter: store, batchRecords: 256,
                                    drainInterval: 0.2)
        log.beginServing(background: true)
        usleep(300_000)  // the start-up orphan scan is done; the thread sleeps
        let written = Date()
        try log.appendAudit(Self.record("after-idle"))
        while try storedIds().isEmpty && Date().timeIntervalSince(written) < 4 { usleep(20_000) }
        XCTAssertEqual(try storedIds(), ["after-idle"])
        XCTAssertLessThan(Date().timeIntervalSince(written), 3.5, "drained by the wake-up, not by the idle one")
    }

    // MARK: Several processes

    static let childDirectoryVariable = "MCP_FCGI_TEST_JOURNAL_STORE"
    static let childRecords = 300

    /// Four processes write at once, each with its background drain running, while this one
    /// drains orphans; the last child dies by SIGKILL after its writes, before its drain at exit,
    /// so its journal is an orphan this process picks up. Every record ends in the store exactly once.
    func testConcurrentWriterProcessesAreAllDrainedExactlyOnce() throws {
        _ = try SQLiteStore(path: storePath)
        let children = try ChildTestProcesses.start("MCPGatewayTests.AuditJournalTests/testChildProcessWritesRecords", count: 4) {
            [Self.childDirectoryVariable: self.storePath, "MCP_FCGI_TEST_JOURNAL_CHILD": "\($0)"]
        }
        let drainer = log(try SQLiteStore(path: storePath))
        let deadline = Date(timeIntervalSinceNow: 120)
        while children.contains(where: \.isRunning) && Date() < deadline {
            try drainer.drainAll()
            usleep(5_000)
        }
        for p in children { p.waitUntilExit() }
        XCTAssertEqual(children.map(\.terminationStatus), [0, 0, 0, SIGKILL])
        try drainer.drainAll()
        let ids = try storedIds()
        XCTAssertEqual(ids.count, 4 * Self.childRecords)
        XCTAssertEqual(Set(ids), Set((0..<4).flatMap { c in (0..<Self.childRecords).map { "c\(c)-\($0)" } }))
        XCTAssertEqual(try journalFiles(), [])
        // Ordered per process: each child's records in the order it wrote them.
        for c in 0..<4 {
            XCTAssertEqual(ids.filter { $0.hasPrefix("c\(c)-") }, (0..<Self.childRecords).map { "c\(c)-\($0)" })
        }
    }

    /// Run only as a child of the test above (its environment names the store).
    func testChildProcessWritesRecords() throws {
        guard let path = ProcessInfo.processInfo.environment[Self.childDirectoryVariable],
              let child = ProcessInfo.processInfo.environment["MCP_FCGI_TEST_JOURNAL_CHILD"] else {
            throw XCTSkip("a child of testConcurrentWriterProcessesAreAllDrainedExactlyOnce")
        }
        let store = try SQLiteStore(path: path, durable: false)
        let log = JournaledAuditLog(directory: JournaledAuditLog.directory(forStore: path), store: store, sampleLimiter: store,
                                    batchRecords: 16, drainInterval: 0.005)
        log.beginServing(background: true)
        for i in 0..<Self.childRecords {
            try log.appendAudit(Self.record("c\(child)-\(i)", time: Double(i)))
        }
        if child == "3" { kill(getpid(), SIGKILL) }
        log.endServing()
    }
}
