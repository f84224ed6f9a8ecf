#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file-system step that failed: what was tried, on which path, and the system's reason.
package struct FileSystemError: Error, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}

/// The directory every process of an installation shares: store, metrics, caches and key material.
package enum StateDirectory {
    /// Creates `path` and any missing parents, owner only (0700): it holds key material.
    /// An existing directory is left as it is.
    package static func ensure(_ path: String) throws {
        var st = stat()
        if stat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw FileSystemError("state path is not a directory: \(path)") }
            return
        }
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
                throw FileSystemError("cannot create state directory \(path): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Run as root, gives `files` to the owner of `directory`, the user the service runs as, so the
    /// service can still open what a root-run operator command created. Only regular files that
    /// root owns are handed over, and the last path component is never followed: the service user
    /// owns the directory and could have planted a symlink to any file on the system.
    package static func handToServiceUser(_ files: [String], in directory: String) {
        guard geteuid() == 0 else { return }
        var owner = stat()
        guard stat(directory, &owner) == 0, (owner.st_mode & S_IFMT) == S_IFDIR, owner.st_uid != 0 else { return }
        for file in files {
            guard let slash = file.lastIndex(of: "/") else { continue }
            let parent = slash == file.startIndex ? "/" : String(file[..<slash])
            let name = String(file[file.index(after: slash)...])
            guard !name.isEmpty else { continue }
            let dir = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard dir >= 0 else { continue }
            defer { close(dir) }
            var st = stat()
            guard fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_uid == 0 else { continue }
            _ = fchownat(dir, name, owner.st_uid, owner.st_gid, AT_SYMLINK_NOFOLLOW)
        }
    }
}
