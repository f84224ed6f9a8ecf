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
        return stamp(of: st)
    }

    /// The file's bytes and stamp, or nil if it does not exist or exceeds `maxBytes`.
    static func readFile(_ path: String, maxBytes: Int) -> (bytes: [UInt8], stamp: FileStamp)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size <= maxBytes else { return nil }
        guard let out = PrivateFiles.readAll(fd, count: Int(st.st_size)) else { return nil }
        return (out, stamp(of: st))
    }

    /// What reading a file others might have written found.
    enum TrustedRead {
        case missing
        /// Present but not trustworthy: see `StateDirectory.whyUntrusted`.
        case untrusted(reason: String, stamp: FileStamp)
        case read(bytes: [UInt8], stamp: FileStamp)
    }

    /// Like `readFile`, for content that decides what is trusted (signing keys): never through a
    /// link, and only when the file and its directory are this user's and writable by nobody else.
    static func readTrustedFile(_ path: String, maxBytes: Int) -> TrustedRead {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else {
            if errno == ENOENT { return .missing }
            // The stamp as `stamp(_:)` sees it (through the link), so the same version is not reread.
            let stamp = stamp(path) ?? FileStamp(device: 0, inode: 0, size: 0, mtimeSeconds: 0, mtimeNanoseconds: 0)
            return .untrusted(reason: "\(path) cannot be opened without following a link: \(String(cString: strerror(errno)))", stamp: stamp)
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .missing }
        if let reason = StateDirectory.whyUntrusted(fd, path: path) { return .untrusted(reason: reason, stamp: stamp(of: st)) }
        guard st.st_size <= maxBytes, let out = PrivateFiles.readAll(fd, count: Int(st.st_size)) else { return .missing }
        return .read(bytes: out, stamp: stamp(of: st))
    }

    static func stamp(of st: stat) -> FileStamp {
        FileStamp(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
                  mtimeSeconds: Int64(st.st_mtim.tv_sec), mtimeNanoseconds: Int64(st.st_mtim.tv_nsec))
    }

    /// Runs `body` holding an exclusive flock on `path` (created 0600), so that one
    /// process at a time refreshes shared state. Returns nil when another process held
    /// the lock for longer than `wait`.
    static func withFileLock<T>(_ path: String, wait: LockWait, _ body: () throws -> T) rethrows -> T? {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        // Without a lock file we still proceed: the lock only avoids duplicate fetches.
        guard fd >= 0 else { return try body() }
        defer { close(fd) }
        // Another process may hold the lock for a fetch: the worker's run permit is lent meanwhile.
        let locked: Bool = whileBlocked {
            if case .indefinitely = wait {
                var rc = flock(fd, LOCK_EX)
                while rc != 0 && errno == EINTR { rc = flock(fd, LOCK_EX) }
                return rc == 0
            }
            return wait.poll { flock(fd, LOCK_EX | LOCK_NB) == 0 }
        }
        guard locked else { return nil }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    static func mode(_ path: String) -> mode_t? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return st.st_mode & 0o7777
    }
}
