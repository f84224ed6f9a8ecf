#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Files only their owner may read (0600), which every worker process, a restarted server and
/// one-shot CGI processes share. Writes go to a private temp file that is renamed or linked into
/// place, so readers see all of a file or none of it.
package enum PrivateFiles {
    /// Atomically replaces `path` with `bytes`.
    package static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws {
        let temp = try writeTemp(beside: path, bytes)
        guard rename(temp, path) == 0 else {
            let e = errno
            unlink(temp)
            throw FileSystemError("cannot replace \(path): \(String(cString: strerror(e)))")
        }
    }

    /// Creates the secret key file `path` from `make()` unless something is there already. Concurrent
    /// first starts agree on one key: the new file is hard-linked into place, which fails rather than
    /// overwrite when another process got there first. Read it with `readSecret` either way.
    package static func createSecretIfAbsent(_ path: String, make: () throws -> [UInt8]) throws {
        var st = stat()
        // Present, or unreachable for a reason `readSecret` will report: nothing to create.
        guard lstat(path, &st) != 0 && errno == ENOENT else { return }
        let temp = try writeTemp(beside: path, try make())
        defer { unlink(temp) }
        guard link(temp, path) == 0 || errno == EEXIST else {
            throw FileSystemError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// The bytes of the secret `what` in `path`; nil when there is no such file. A secret others can
    /// read is not secret, and a link may lead anywhere: both are refused, as ssh refuses them.
    package static func readSecret(_ path: String, what: String, maxBytes: Int) throws -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw FileSystemError("cannot read \(what) \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw FileSystemError("\(what) \(path) is not a regular file")
        }
        guard st.st_mode & 0o077 == 0 else {
            throw FileSystemError("\(what) \(path) must not be readable by group or others (chmod 600)")
        }
        guard st.st_size <= maxBytes else { throw FileSystemError("\(what) \(path) holds more than \(maxBytes) bytes") }
        guard let bytes = readAll(fd, count: Int(st.st_size)) else { throw FileSystemError("cannot read \(what) \(path)") }
        return bytes
    }

    /// Exactly `count` bytes from `fd`, retrying interrupted reads; nil if the file ends sooner or a read fails.
    package static func readAll(_ fd: Int32, count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            done += n
        }
        return out
    }

    private static func writeTemp(beside path: String, _ bytes: [UInt8]) throws -> String {
        let temp = "\(path).tmp.\(getpid()).\(Hex.random(words: 1))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FileSystemError("cannot write \(temp): \(String(cString: strerror(errno)))") }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let e = errno
                close(fd); unlink(temp)
                throw FileSystemError("cannot write \(temp): \(String(cString: strerror(e)))")
            }
            done += n
        }
        // fchmod as well: the process umask may have narrowed 0600 but never widens it; be explicit.
        fchmod(fd, 0o600)
        let syncError = fsync(fd) == 0 ? 0 : errno
        close(fd)
        guard syncError == 0 else {
            unlink(temp)
            throw FileSystemError("cannot write \(temp): \(String(cString: strerror(syncError)))")
        }
        return temp
    }
}
