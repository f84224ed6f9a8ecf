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
            let (parent, name) = split(file)
            guard !name.isEmpty else { continue }
            let dir = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard dir >= 0 else { continue }
            defer { close(dir) }
            var st = stat()
            guard fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_uid == 0 else { continue }
            _ = fchownat(dir, name, owner.st_uid, owner.st_gid, AT_SYMLINK_NOFOLLOW)
        }
    }

    /// Run as root, becomes the user who owns the state `directories` for the rest of the process
    /// (groups, group and user, for good), so that nothing the command opens or creates there can be
    /// a link the service user planted towards a file only root may touch. Called after the config
    /// is read (it may be readable by root only) and before any store or key file is opened. A
    /// root-owned or missing directory leaves the process as it is; directories of two different
    /// owners are refused, since one process can become only one of them.
    package static func becomeOwner(of directories: [String]) throws {
        guard geteuid() == 0 else { return }
        var owner: (uid: uid_t, gid: gid_t)?
        for directory in directories {
            var st = stat()
            guard stat(directory, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid != 0 else { continue }
            if let owner, owner.uid != st.st_uid {
                throw FileSystemError("the state directories belong to different users (uid \(owner.uid) and \(st.st_uid)): run the command once per instance with --instance")
            }
            owner = (st.st_uid, st.st_gid)
        }
        guard let owner else { return }
        guard setgroups(0, nil) == 0, setgid(owner.gid) == 0, setuid(owner.uid) == 0 else {
            throw FileSystemError("cannot switch to the state directory's owner (uid \(owner.uid)): \(String(cString: strerror(errno)))")
        }
        // setuid from root drops the saved id as well; make sure there is no way back.
        guard setuid(0) != 0 else { throw FileSystemError("could not give up root after switching to uid \(owner.uid)") }
    }

    /// Opens (creating it owner-only when absent) the file `path` for reading and writing without
    /// following a link in its last component, and checks it with `checkOwnFile`. Returns the open fd.
    package static func openOwnFile(_ path: String) throws -> Int32 {
        let (parent, name) = split(path)
        let dir = try openDirectory(parent)
        defer { close(dir) }
        let fd = openat(dir, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let e = errno
            if e == ELOOP { throw FileSystemError("\(path) is a symbolic link: refusing to follow it") }
            throw FileSystemError("cannot open \(path): \(String(cString: strerror(e)))")
        }
        var st = stat(), dirStat = stat()
        do {
            guard fstat(fd, &st) == 0, fstat(dir, &dirStat) == 0 else { throw FileSystemError("cannot stat \(path)") }
            try checkOwnFile(st, path: path, directoryOwner: dirStat.st_uid)
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Refuses `path` when it exists and is not a plain file of ours (see `checkOwnFile`), never
    /// following a link; a missing file passes.
    package static func checkOwnFileIfPresent(_ path: String) throws {
        let (parent, name) = split(path)
        let dir = try openDirectory(parent)
        defer { close(dir) }
        var st = stat(), dirStat = stat()
        guard fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
            if errno == ENOENT { return }
            throw FileSystemError("cannot stat \(path): \(String(cString: strerror(errno)))")
        }
        guard fstat(dir, &dirStat) == 0 else { throw FileSystemError("cannot stat \(parent)") }
        try checkOwnFile(st, path: path, directoryOwner: dirStat.st_uid)
    }

    /// A file in the state directory is written through as whoever runs the process, so it must be
    /// a regular file (not a link), have no second name (a hard link to another user's file), and
    /// belong to this user or to the directory's owner.
    package static func checkOwnFile(_ st: stat, path: String, directoryOwner: uid_t) throws {
        switch st.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFLNK: throw FileSystemError("\(path) is a symbolic link: refusing to follow it")
        default: throw FileSystemError("\(path) is not a regular file")
        }
        guard st.st_nlink == 1 else { throw FileSystemError("\(path) has \(st.st_nlink) hard links: refusing a file with another name elsewhere") }
        guard st.st_uid == geteuid() || st.st_uid == directoryOwner else {
            throw FileSystemError("\(path) belongs to uid \(st.st_uid), neither this user (\(geteuid())) nor the directory's owner (\(directoryOwner))")
        }
    }

    /// Why the open file `fd` at `path` cannot be trusted as something this service wrote, or nil
    /// when it can: it and its directory must belong to this user (or root) and be writable by
    /// nobody else, and it must be a regular file. Anyone else who can write there could have put it.
    package static func whyUntrusted(_ fd: Int32, path: String) -> String? {
        let (parent, _) = split(path)
        var file = stat(), dir = stat()
        guard fstat(fd, &file) == 0 else { return "cannot stat \(path): \(String(cString: strerror(errno)))" }
        guard stat(parent, &dir) == 0 else { return "cannot stat \(parent): \(String(cString: strerror(errno)))" }
        let me = geteuid()
        for (what, st) in [(parent, dir), (path, file)] {
            if st.st_uid != me && st.st_uid != 0 { return "\(what) belongs to uid \(st.st_uid), not to this user (\(me)) or root" }
            if st.st_mode & 0o022 != 0 { return "\(what) is writable by group or others (mode \(String(st.st_mode & 0o7777, radix: 8)))" }
        }
        guard (file.st_mode & S_IFMT) == S_IFREG else { return "\(path) is not a regular file" }
        return nil
    }

    /// `path` with its directory's links resolved (those are the administrator's) and its last
    /// component as it is, for a library that refuses any link in the path it is given.
    package static func inRealDirectory(_ path: String) throws -> String {
        let (parent, name) = split(path)
        guard let real = realpath(parent, nil) else {
            throw FileSystemError("cannot resolve the directory \(parent): \(String(cString: strerror(errno)))")
        }
        defer { free(real) }
        let directory = String(cString: real)
        return (directory == "/" ? "" : directory) + "/" + name
    }

    private static func openDirectory(_ path: String) throws -> Int32 {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileSystemError("cannot open the directory \(path): \(String(cString: strerror(errno)))") }
        return fd
    }

    private static func split(_ path: String) -> (parent: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        return (slash == path.startIndex ? "/" : String(path[..<slash]), String(path[path.index(after: slash)...]))
    }
}
