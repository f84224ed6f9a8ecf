import Foundation
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
        try blockCache.blocks(reloadingWith: loadBlocks).first { b in
            (b.until.map { $0 > now } ?? true) && keys.contains { $0.0 == b.kind && $0.1 == b.id }
        }
    }

    private static func block(_ row: [SQLiteDatabase.Value]) -> Block? {
        guard row.count == 4, let kind = row[0].text.flatMap(Block.Kind.init(rawValue:)), let id = row[1].text else { return nil }
        return Block(kind: kind, id: id, until: row[2].int, reason: row[3].text)
    }
}

/// Every request checks blocks, so each process keeps them in memory and reloads
/// only when the marker file beside the database changes: a writer replaces it
/// after committing, and a stat() per request notices within that request.
final class BlockCache: @unchecked Sendable {
    let markerPath: String
    private let lock = NSLock()
    private var cached: [Block] = []
    private var stamp: [Int]?
    private var loaded = false

    init(markerPath: String) { self.markerPath = markerPath }

    /// The blocks as of the marker's last change, read with `load` when it changed since the last call.
    func blocks(reloadingWith load: () throws -> [Block]) throws -> [Block] {
        let current = markerStamp()
        lock.lock()
        defer { lock.unlock() }
        if !loaded || current != stamp {
            cached = try load()
            stamp = current
            loaded = true
        }
        return cached
    }

    /// Replaces the marker, so every process reloads on its next check.
    func announceChange() throws {
        // A fresh, unguessable temp file renamed over the marker: a link planted there is replaced, never followed.
        let stamp = "\(Date().timeIntervalSince1970) \(getpid())\n"
        do {
            try PrivateFiles.writeAtomically(markerPath, Array(stamp.utf8))
        } catch let e as FileSystemError {
            throw StoreError("cannot update the blocks marker: \(e.description)")
        }
    }

    private func markerStamp() -> [Int]? {
        var st = stat()
        guard stat(markerPath, &st) == 0 else { return nil }
        return [Int(st.st_ino), Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec), Int(st.st_size)]
    }
}
