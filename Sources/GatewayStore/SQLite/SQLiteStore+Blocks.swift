import FoundationEssentials
import Glibc
import GatewaySupport

extension SQLiteStore: BlockList {
    public func addBlock(_ b: Block) throws {
        _ = try db.transaction(write: true) { db in
            try db.query("INSERT OR REPLACE INTO blocks (kind, id, until, reason, created) VALUES (?, ?, ?, ?, ?)",
                         [.text(b.kind.rawValue), .text(b.id), b.until.map { .int($0) } ?? .null,
                          b.reason.map { .text($0) } ?? .null, .int(Int64(Date().timeIntervalSince1970))])
        }
        try blockCache.announceChange()
    }

    public func removeBlock(kind: Block.Kind, id: String) throws -> Bool {
        let removed = try db.transaction(write: true) { db in
            try db.query("DELETE FROM blocks WHERE kind = ? AND id = ? RETURNING id", [.text(kind.rawValue), .text(id)]).count > 0
        }
        try blockCache.announceChange()
        return removed
    }

    public func blocks(now: Int64) throws -> [Block] {
        try loadBlocks().filter { $0.until.map { $0 > now } ?? true }
    }

    private func loadBlocks() throws -> [Block] {
        try db.transaction(write: false) { db in
            try db.query("SELECT kind, id, until, reason FROM blocks ORDER BY kind, id").compactMap(Self.block)
        }
    }

    public func activeBlock(matching keys: [(Block.Kind, String)], now: Int64) throws -> Block? {
        try activeBlock(now: now) { keys }
    }

    public func activeBlock(now: Int64, matchingKeys makeKeys: () -> [(Block.Kind, String)]) throws -> Block? {
        let blocks = try blockCache.blocks(reloadingWith: loadBlocks)
        guard !blocks.isEmpty else { return nil }
        let keys = makeKeys()
        return blocks.first { b in
            (b.until.map { $0 > now } ?? true) && keys.contains { $0.0 == b.kind && $0.1 == b.id }
        }
    }

    private static func block(_ row: [SQLiteDatabase.Value]) -> Block? {
        guard row.count == 4, let kind = row[0].text.flatMap(Block.Kind.init(rawValue:)), let id = row[1].text else { return nil }
        return Block(kind: kind, id: id, until: row[2].int, reason: row[3].text)
    }
}

/// How a process learns that the blocks changed: a stamp it reads on every check (cheap), and
/// a way for the writer to change it after committing.
public protocol BlockChangeSignal: AnyObject, Sendable {
    /// Differs from the last value read once the blocks changed; nil when unknown.
    var stamp: UInt64? { get }
    func announce() throws
}

/// Every request checks blocks, so each process keeps them in memory and reloads only when
/// the signal's stamp changes (the shared-memory generation: one load, no system call). The
/// first check loads without reading the stamp, the second reads it and loads again: a process
/// that answers one request (CGI) never needs the signal, and every later check compares.
final class BlockCache: @unchecked Sendable {
    let signal: BlockChangeSignal
    /// Replaced on every change too: processes of an older build stat() it on every check.
    let markerPath: String
    private let lock = Lock()
    private var cached: [Block] = []
    /// The stamp `cached` was loaded under; nil when none was read or it was unknown (reload).
    private var stamp: UInt64?
    private var loaded = false

    init(signal: BlockChangeSignal, markerPath: String) {
        self.signal = signal
        self.markerPath = markerPath
    }

    /// The blocks as of the signal's last change, read with `load` when it changed since the last call.
    func blocks(reloadingWith load: () throws -> [Block]) throws -> [Block] {
        lock.lock()
        let first = !loaded
        lock.unlock()
        // Read before loading: a change during the load reloads next time.
        let current = first ? nil : signal.stamp
        // Another worker may be loading (a store read that can wait with its run permit lent).
        lock.lockWhileBlocked()
        defer { lock.unlock() }
        if !loaded || current == nil || current != stamp {
            cached = try load()
            stamp = current
            loaded = true
        }
        return cached
    }

    /// After the change is committed: every process reloads on its next check.
    func announceChange() throws {
        // A fresh, unguessable temp file renamed over the marker: a link planted there is replaced, never followed.
        let stamp = "\(Date().timeIntervalSince1970) \(getpid())\n"
        do {
            try PrivateFiles.writeAtomically(markerPath, Array(stamp.utf8))
        } catch let e as FileSystemError {
            throw StoreError("cannot update the blocks marker: \(e.description)")
        }
        try signal.announce()
    }
}
