#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GatewayCrypto
import GatewaySupport

/// Identity of a file version: a rename gives a new inode, a rewrite a new mtime.
struct FileStamp: Equatable {
    let device: UInt64
    let inode: UInt64
    let size: Int64
    let mtimeSeconds: Int64
    let mtimeNanoseconds: Int64
}

/// Reading the small files in the shared state directory, which every worker process, a
/// restarted server and one-shot CGI processes share (GatewaySupport's PrivateFiles writes them).
enum StateFiles {
    static func stamp(_ path: String) -> FileStamp? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileStamp(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
                         mtimeSeconds: Int64(st.st_mtim.tv_sec), mtimeNanoseconds: Int64(st.st_mtim.tv_nsec))
    }

    /// The file's bytes and stamp, or nil if it does not exist or exceeds `maxBytes`.
    static func readFile(_ path: String, maxBytes: Int) -> (bytes: [UInt8], stamp: FileStamp)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size <= maxBytes else { return nil }
        guard let out = PrivateFiles.readAll(fd, count: Int(st.st_size)) else { return nil }
        let stamp = FileStamp(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
                              mtimeSeconds: Int64(st.st_mtim.tv_sec), mtimeNanoseconds: Int64(st.st_mtim.tv_nsec))
        return (out, stamp)
    }

    /// Runs `body` holding an exclusive flock on `path` (created 0600), so that one
    /// process at a time refreshes shared state. With `wait == false` returns nil
    /// when another process holds the lock.
    static func withFileLock<T>(_ path: String, wait: Bool, _ body: () throws -> T) rethrows -> T? {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        // Without a lock file we still proceed: the lock only avoids duplicate fetches.
        guard fd >= 0 else { return try body() }
        defer { close(fd) }
        while flock(fd, wait ? LOCK_EX : (LOCK_EX | LOCK_NB)) != 0 {
            if errno == EINTR { continue }
            return nil
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    static func mode(_ path: String) -> mode_t? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return st.st_mode & 0o7777
    }
}
