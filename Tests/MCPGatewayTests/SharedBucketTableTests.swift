import Foundation
@testable import GatewayStore
import XCTest

/// The shared-memory rate-limit table: the token-bucket answers of the SQLite engine, exact
/// across processes (forked here) and threads, a holder killed mid-update, a full table, and
/// files that are not a table of this layout.
final class SharedBucketTableTests: XCTestCase {
    var dir: String!
    var path: String { dir + "/s.db.limits" }

    override func setUp() {
        dir = NSTemporaryDirectory() + "mcp-fcgi-buckets-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// A bucket that does not refill during a test: its burst is what counts.
    static func bucket(_ key: String = "k", burst: Double) -> [RateBucket] {
        [RateBucket(key: key, perMinute: 0.0001, burst: burst)]
    }

    func testTokenBucketAnswersAsTheSQLiteEngineDoes() throws {
        let a = try SharedBucketTable(path: path), b = try SharedBucketTable(path: path)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
        // Burst 3, 60/min (one a second): three pass between the two, the fourth waits about a second.
        let k = [RateBucket(key: "k", perMinute: 60, burst: 3)]
        XCTAssertNil(try a.take(k, now: 100))
        XCTAssertNil(try b.take(k, now: 100))
        XCTAssertNil(try a.take(k, now: 100))
        XCTAssertEqual(try XCTUnwrap(try b.take(k, now: 100)), 1, accuracy: 0.01)
        XCTAssertEqual(try XCTUnwrap(try b.take(k, now: 100.5)), 0.5, accuracy: 0.01)
        XCTAssertNil(try b.take(k, now: 101))
        XCTAssertNil(try a.take([RateBucket(key: "other", perMinute: 60, burst: 3)], now: 101))
        // All or none: a full bucket next to an empty one consumes nothing.
        let both = [RateBucket(key: "fresh", perMinute: 60, burst: 3), RateBucket(key: "k", perMinute: 60, burst: 3)]
        XCTAssertNotNil(try a.take(both, now: 101))
        XCTAssertNil(try a.take([RateBucket(key: "fresh", perMinute: 60, burst: 1)], now: 101))
        XCTAssertNotNil(try a.take([RateBucket(key: "fresh", perMinute: 60, burst: 1)], now: 101))
        // A clock that went back refills nothing and never takes more than there is.
        XCTAssertNotNil(try a.take([RateBucket(key: "fresh", perMinute: 60, burst: 1)], now: 50))
        XCTAssertThrowsError(try a.take([RateBucket(key: "z", perMinute: 0, burst: 1)], now: 1), "no refill rate")
        XCTAssertThrowsError(try a.take([RateBucket(key: "z", perMinute: 1, burst: 0.5)], now: 1), "burst below one")
        XCTAssertThrowsError(try a.take(Self.bucket("z", burst: 1) + Self.bucket("z", burst: 1), now: 1), "one key twice")
    }

    func testLimitIsExactAcrossFourProcesses() throws {
        let burst = 150, perChild = 100, children = 4
        _ = try SharedBucketTable(path: path)  // created before the fork: every child maps the same file
        // The children wait at this pipe until all are forked, so they hammer at once.
        var gate: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&gate), 0)
        var pids: [pid_t] = []
        for _ in 0..<children {
            let pid = fork()
            if pid == 0 {
                close(gate[1])
                var byte: UInt8 = 0
                _ = read(gate[0], &byte, 1)
                guard let table = try? SharedBucketTable(path: path) else { _exit(255) }
                var granted: Int32 = 0
                for _ in 0..<perChild where (try? table.take(Self.bucket(burst: Double(burst)), now: 10)) == .some(nil) {
                    granted += 1
                }
                _exit(granted)
            }
            XCTAssertGreaterThan(pid, 0)
            pids.append(pid)
        }
        close(gate[0])
        close(gate[1])  // end of file at every child's read: go
        var total = 0
        for pid in pids {
            var status: Int32 = 0
            XCTAssertEqual(waitpid(pid, &status, 0), pid)
            let exited = status & 0x7f == 0, code = Int((status >> 8) & 0xff)
            XCTAssertTrue(exited && code != 255, "child \(pid) status \(status)")
            total += code
        }
        XCTAssertEqual(total, burst, "exactly the burst across \(children) processes")
        XCTAssertNotNil(try SharedBucketTable(path: path).take(Self.bucket(burst: Double(burst)), now: 10))
    }

    func testLimitIsExactAcrossThreads() throws {
        let tables = try (0..<4).map { _ in try SharedBucketTable(path: path) }
        let lock = NSLock()
        var granted = 0, failed = 0
        DispatchQueue.concurrentPerform(iterations: 2000) { i in
            // Two buckets per take, as admission's user and tenant limits: all or none under one lock.
            let result = Result { try tables[i % 4].take(Self.bucket("user-\(i % 2)", burst: 400) + Self.bucket("tenant", burst: 500), now: 10) }
            lock.withLock {
                switch result {
                case .success(nil): granted += 1
                case .success: break
                case .failure: failed += 1
                }
            }
        }
        XCTAssertEqual(failed, 0)
        XCTAssertEqual(granted, 500, "the tenant bucket ran out first")
        // No user token was spent on a take the tenant bucket refused: 800 - 500 are left between the two.
        var left = 0
        for user in ["user-0", "user-1"] {
            while try tables[1].take(Self.bucket(user, burst: 400), now: 10) == nil { left += 1 }
        }
        XCTAssertEqual(left, 300)
    }

    func testAHolderKilledMidUpdateLeavesTheTableUsableAndItsTakesWholeOrAbsent() throws {
        // Far more than the children can take before they are killed: they never run out.
        let burst = 500_000.0
        _ = try SharedBucketTable(path: path)
        // What each child counted, one word per child, in memory shared with this process.
        let kills = 6
        let reported = mmap(nil, kills * 8, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)!
        defer { munmap(reported, kills * 8) }
        let counts = reported.bindMemory(to: Int.self, capacity: kills)
        for n in 0..<kills {
            counts[n] = 0
            let pid = fork()
            if pid == 0 {
                guard let table = try? SharedBucketTable(path: path) else { _exit(2) }
                // Takes without pause: most of the time is spent inside the lock, where the kill lands.
                while (try? table.take(Self.bucket(burst: burst), now: 10)) == .some(nil) { counts[n] += 1 }
                _exit(1)
            }
            usleep(useconds_t(5_000 + 3_000 * n))
            XCTAssertEqual(kill(pid, SIGKILL), 0)
            var status: Int32 = 0
            XCTAssertEqual(waitpid(pid, &status, 0), pid)
            XCTAssertEqual(status & 0x7f, SIGKILL, "killed while taking, not exited")
        }
        // The next holder recovers (never waits on the dead one) and counting stays exact: each kill
        // can lose at most the one take that was done but not yet reported, never half a take.
        let table = try SharedBucketTable(path: path)
        let remaining = LockedCount()
        let done = expectation(description: "drained")
        DispatchQueue.global().async {
            while (try? table.take(Self.bucket(burst: burst), now: 10)) == .some(nil) { remaining.add() }
            done.fulfill()
        }
        wait(for: [done], timeout: 60)
        let counted = (0..<kills).reduce(0) { $0 + counts[$1] }
        XCTAssertGreaterThan(counted, 0)
        let consumed = Int(burst) - remaining.value
        XCTAssertGreaterThanOrEqual(consumed, counted)
        XCTAssertLessThanOrEqual(consumed, counted + kills)
    }

    func testAFullTableFailsClosedAndReusesOnlyBucketsThatAreFullAgain() throws {
        let table = try SharedBucketTable(path: path, slots: 8)
        XCTAssertEqual(table.capacity, 8)
        // Eight keys, each with a token spent and a refill of one a minute: none is full again for a minute.
        let limit = { (key: String) in [RateBucket(key: key, perMinute: 1, burst: 2)] }
        for i in 0..<8 { XCTAssertNil(try table.take(limit("k\(i)"), now: 1000)) }
        XCTAssertThrowsError(try table.take(limit("new"), now: 1000)) { error in
            XCTAssertTrue("\(error)".contains("no free slot"), "\(error)")
        }
        XCTAssertNil(try table.take(limit("k3"), now: 1000), "known buckets still count")
        XCTAssertNotNil(try table.take(limit("k3"), now: 1000))
        // A minute on, k3 (two spent) is not full yet and keeps its slot; the others are and may be reused.
        XCTAssertNil(try table.take(limit("new"), now: 1060))
        XCTAssertNil(try table.take(limit("k3"), now: 1060), "k3 kept its count: one token back")
        XCTAssertNotNil(try table.take(limit("k3"), now: 1060), "and none more")
        // A reopened table keeps the slot count its creator chose.
        XCTAssertEqual(try SharedBucketTable(path: path, slots: 1024).capacity, 8)
    }

    func testFilesThatAreNotATableOfThisLayoutAreRefused() throws {
        func refused(_ path: String, _ reason: String, line: UInt = #line) {
            XCTAssertThrowsError(try SharedBucketTable(path: path), line: line) { error in
                XCTAssertTrue("\(error)".contains(reason), "\(error)", line: line)
            }
        }
        let foreign = dir + "/foreign"
        XCTAssertTrue(FileManager.default.createFile(atPath: foreign, contents: Data((0..<4096).map { UInt8($0 % 251) }),
                                       attributes: [.posixPermissions: 0o600]))
        refused(foreign, "foreign or damaged")

        _ = try SharedBucketTable(path: path, slots: 16)
        let truncated = dir + "/truncated"
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertTrue(FileManager.default.createFile(atPath: truncated, contents: whole.prefix(whole.count - 64), attributes: [.posixPermissions: 0o600]))
        refused(truncated, "foreign or damaged")
        var damaged = whole
        damaged[8] ^= 0xff  // the layout version
        let versioned = dir + "/versioned"
        XCTAssertTrue(FileManager.default.createFile(atPath: versioned, contents: damaged, attributes: [.posixPermissions: 0o600]))
        refused(versioned, "foreign or damaged")

        let readable = dir + "/readable"
        XCTAssertTrue(FileManager.default.createFile(atPath: readable, contents: whole, attributes: [.posixPermissions: 0o644]))
        refused(readable, "readable by others")

        let link = dir + "/link"
        XCTAssertEqual(symlink(path, link), 0)
        refused(link, "symbolic link")
        XCTAssertEqual(mkdir(dir + "/directory", 0o700), 0)
        XCTAssertThrowsError(try SharedBucketTable(path: dir + "/directory"))

        // A creator that died before writing the header leaves a file the next opener lays out afresh.
        let unfinished = dir + "/unfinished"
        XCTAssertTrue(FileManager.default.createFile(atPath: unfinished, contents: Data(count: 8192), attributes: [.posixPermissions: 0o600]))
        XCTAssertNil(try SharedBucketTable(path: unfinished, slots: 16).take(Self.bucket(burst: 1), now: 1))
    }

    func testBlockChangesBumpTheGenerationEveryProcessReads() throws {
        let storePath = dir + "/s.db"
        let writer = try SQLiteStore(path: storePath), reader = try SQLiteStore(path: storePath)
        let table = try SharedBucketTable(path: SharedBucketTable.path(besideStore: storePath))
        XCTAssertNil(try reader.activeBlock(matching: [(.user, "u1")], now: 500))  // cached: no blocks
        let before = try XCTUnwrap(table.stamp)
        try writer.addBlock(Block(kind: .user, id: "u1", until: nil, reason: "test"))
        XCTAssertEqual(table.stamp, before + 1)
        // No marker needed to see it: the generation alone tells the reader to reload.
        try FileManager.default.removeItem(atPath: SQLiteStore.blocksMarkerPath(storePath))
        XCTAssertEqual(try reader.activeBlock(matching: [(.user, "u1")], now: 500)?.reason, "test")
        XCTAssertTrue(FileManager.default.fileExists(atPath: storePath + ".blocks") == false)
        XCTAssertTrue(try writer.removeBlock(kind: .user, id: "u1"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: storePath + ".blocks"), "still replaced, for older processes")
        XCTAssertNil(try reader.activeBlock(matching: [(.user, "u1")], now: 500))
    }

    func testTheTableIsMappedOnlyWhenALimitOrASecondBlockCheckNeedsIt() throws {
        let storePath = dir + "/s.db"
        let stores = try StateStores.sqlite(path: storePath, durable: false)
        let table = try XCTUnwrap(stores.rateLimiter as? SharedBucketTableOnFirstUse)
        let exists = { FileManager.default.fileExists(atPath: SharedBucketTable.path(besideStore: storePath)) }
        XCTAssertFalse(exists(), "opening the store leaves the table alone")
        XCTAssertNil(try stores.blocks.activeBlock(matching: [(.user, "u1")], now: 500))
        XCTAssertNil(try stores.rateLimiter.take([], now: 500), "no bucket (limits off): nothing to count")
        XCTAssertFalse(exists() || table.isMapped, "one request with limits off (a CGI process) never maps it")
        XCTAssertNil(try stores.blocks.activeBlock(matching: [(.user, "u1")], now: 500))
        XCTAssertTrue(exists() && table.isMapped, "the second check compares the generation")

        let other = SharedBucketTableOnFirstUse(path: dir + "/other.limits", slots: 16)
        XCTAssertNil(try other.take(Self.bucket(burst: 1), now: 1))
        XCTAssertTrue(other.isMapped, "a counted limit maps it")
        XCTAssertEqual(try other.take(Self.bucket(burst: 1), now: 1) ?? 0, 600_000, accuracy: 1)
    }

    func testATableThatCannotBeMappedRefusesTakesAndBlocksAreReadEveryTime() throws {
        let storePath = dir + "/s.db"
        XCTAssertEqual(mkdir(SharedBucketTable.path(besideStore: storePath), 0o700), 0)  // a directory where the file goes
        let stores = try StateStores.sqlite(path: storePath, durable: false)
        XCTAssertThrowsError(try stores.rateLimiter.take(Self.bucket(burst: 1), now: 1)) { error in
            XCTAssertTrue("\(error)".contains("cannot map the rate-limit table"), "\(error)")
        }
        let signal = try XCTUnwrap(stores.rateLimiter as? SharedBucketTableOnFirstUse)
        XCTAssertNil(signal.stamp)
        // Without a generation to compare, every check reads the blocks: a block added elsewhere is seen at once.
        let writer = try SQLiteStore(path: storePath, blockSignal: SharedBucketTable(path: dir + "/writer.limits"))
        for round in 0..<3 {
            XCTAssertNil(try stores.blocks.activeBlock(matching: [(.user, "u\(round)")], now: 500))
            try writer.addBlock(Block(kind: .user, id: "u\(round)", until: nil, reason: "r\(round)"))
            XCTAssertEqual(try stores.blocks.activeBlock(matching: [(.user, "u\(round)")], now: 500)?.reason, "r\(round)")
        }
    }

    func testTheBlockCacheComparesStampsFromItsSecondCheck() throws {
        let signal = CountingSignal()
        let cache = BlockCache(signal: signal, markerPath: dir + "/marker")
        var loads = 0
        let load = { () -> [Block] in loads += 1; return [] }
        _ = try cache.blocks(reloadingWith: load)
        XCTAssertEqual([loads, signal.reads], [1, 0], "the first check loads without the stamp")
        _ = try cache.blocks(reloadingWith: load)
        XCTAssertEqual([loads, signal.reads], [2, 1], "the second reads it and loads under it")
        _ = try cache.blocks(reloadingWith: load)
        XCTAssertEqual([loads, signal.reads], [2, 2], "unchanged: kept")
        try signal.announce()
        _ = try cache.blocks(reloadingWith: load)
        _ = try cache.blocks(reloadingWith: load)
        XCTAssertEqual([loads, signal.reads], [3, 4], "changed: loaded once more, then kept")
        signal.unknown = true
        _ = try cache.blocks(reloadingWith: load)
        _ = try cache.blocks(reloadingWith: load)
        XCTAssertEqual(loads, 5, "an unknown stamp reloads every time")
    }
}

/// A block change signal that counts how often its stamp is read.
private final class CountingSignal: BlockChangeSignal, @unchecked Sendable {
    var generation: UInt64 = 7
    var reads = 0
    var unknown = false
    var stamp: UInt64? {
        reads += 1
        return unknown ? nil : generation
    }
    func announce() throws { generation += 1 }
}

/// A count one thread adds to and another reads once it is done.
private final class LockedCount: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }

    /// A bucket's name is the first 128 bits of its key's SHA-256, remembered or not, and the
    /// memory of keys stays within its limit however many distinct keys pass.
    func testKeyDigestsAreTheKeysSHA256RememberedWithinALimit() {
        func bytes(_ d: KeyDigests.Digest) -> [UInt8] { withUnsafeBytes(of: d) { Array($0) } }
        let abc: [UInt8] = [0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23]
        let empty: [UInt8] = [0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24]
        let digests = KeyDigests()
        XCTAssertEqual(bytes(digests.digest(of: "abc")), abc)
        XCTAssertEqual(bytes(digests.digest(of: "abc")), abc, "remembered")
        XCTAssertEqual(bytes(digests.digest(of: "")), empty)
        XCTAssertEqual(digests.count, 2)
        var first: [[UInt8]] = []
        for i in 0..<(KeyDigests.limit * 2 + 5) {
            let d = bytes(digests.digest(of: "user:t/\(i)"))
            if i < 8 { first.append(d) }
            XCTAssertLessThanOrEqual(digests.count, KeyDigests.limit)
        }
        XCTAssertEqual(bytes(digests.digest(of: "abc")), abc, "worked out again once forgotten")
        for i in 0..<8 { XCTAssertEqual(bytes(digests.digest(of: "user:t/\(i)")), first[i]) }
        XCTAssertNotEqual(first[0], first[1])
    }
}
