import FoundationEssentials
import Glibc

extension SQLiteStore: StoreHealthCheck {
    public func health() throws -> StoreHealth {
        _ = try db.transaction(write: false) { db in try db.query("PRAGMA user_version") }
        var bytes: Int64 = 0
        for file in [db.path, db.path + "-wal"] {
            var st = stat()
            if stat(file, &st) == 0 { bytes += Int64(st.st_size) }
        }
        return StoreHealth(bytes: bytes)
    }

    public func probeWrite() throws {
        try db.transaction(write: true) { db in try db.execute("DELETE FROM rate_buckets WHERE key = ''") }
    }
}
