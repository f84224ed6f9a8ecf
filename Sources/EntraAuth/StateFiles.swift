#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GatewaySupport

/// Identity of a file version: a rename gives a new inode, a rewrite a new mtime.
struct FileStamp: Equatable {
    let device: UInt64
    let inode: UInt64
    let size: Int64
    let mtimeSeconds: Int64
    let mtimeNanoseconds: Int64
}

/// Small files in the shared state directory, which every worker process, a
/// restarted server and one-shot CGI processes read. Writes go to a private
/// temp file (mode 0600) that is renamed into place, so readers see the old or
/// the new file, never half of one.
enum StateFiles {
    static func ensureDirectory(_ path: String) throws {
        var st = stat()
        if stat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw AuthConfigurationError("state path is not a directory: \(path)") }
            return
        }
        // Create parents too; the state directory holds key material, so owner only.
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
                throw AuthConfigurationError("cannot create state directory \(path): \(String(cString: strerror(errno)))")
            }
        }
    }

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
        var out = [UInt8](repeating: 0, count: Int(st.st_size))
        var done = 0
        while done < out.count {
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            done += n
        }
        let stamp = FileStamp(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
                              mtimeSeconds: Int64(st.st_mtim.tv_sec), mtimeNanoseconds: Int64(st.st_mtim.tv_nsec))
        return (out, stamp)
    }

    /// Atomically replaces `path` with `bytes` (mode 0600).
    static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws {
        let temp = try writeTemp(beside: path, bytes)
        guard rename(temp, path) == 0 else {
            let e = errno
            unlink(temp)
            throw AuthConfigurationError("cannot replace \(path): \(String(cString: strerror(e)))")
        }
    }

    /// Creates `path` with `bytes` only if it does not exist yet; false if another
    /// process got there first (link(2) fails rather than overwrite).
    static func createExclusively(_ path: String, _ bytes: [UInt8]) throws -> Bool {
        let temp = try writeTemp(beside: path, bytes)
        defer { unlink(temp) }
        if link(temp, path) == 0 { return true }
        if errno == EEXIST { return false }
        throw AuthConfigurationError("cannot create \(path): \(String(cString: strerror(errno)))")
    }

    private static func writeTemp(beside path: String, _ bytes: [UInt8]) throws -> String {
        let temp = "\(path).tmp.\(getpid()).\(Hex.random(words: 1))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AuthConfigurationError("cannot write \(temp): \(String(cString: strerror(errno)))") }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let e = errno
                close(fd); unlink(temp)
                throw AuthConfigurationError("cannot write \(temp): \(String(cString: strerror(e)))")
            }
            done += n
        }
        // fchmod as well: the process umask may have narrowed 0600 but never widens it; be explicit.
        fchmod(fd, 0o600)
        fsync(fd)
        close(fd)
        return temp
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
