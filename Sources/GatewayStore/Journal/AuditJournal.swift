#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import GatewaySupport

/// The audit journals of one store: a directory of append-only files, one per writing process
/// (a new one after each drain), `<host>-<pid>-<start>-<n>.journal`. A record is one `write(2)`
/// of one frame (`JournalFrame`): in the OS, so it survives a kill -9, when the write returns.
///
/// Each file is locked (`flock`) by its writer for as long as the writer lives, so a drainer that
/// gets the lock knows the writer is gone (CGI and mod_fcgid processes die) and the file is an
/// orphan to move into the store. A file is created under a `.new` name, locked, then renamed, so
/// no drainer ever sees a journal its writer has not locked yet.
final class AuditJournal: @unchecked Sendable {
    let directory: String
    private let tag: String
    private let lock = NSLock()
    /// One drain at a time in this process (the background step and the one at exit).
    private let drainLock = NSLock()
    private var directoryDescriptor: Int32 = -1
    private var current: OpenJournal?
    /// Own journals closed to writing, waiting to be moved into the store.
    private var retired: [OpenJournal] = []
    private var filesCreated = 0
    private var framesWritten: Int64 = 0

    private struct OpenJournal {
        let name: String
        let fd: Int32
        var bytes: Int
    }

    static let suffix = ".journal"
    static let unrenamedSuffix = ".journal.new"
    /// Where torn tails are kept for inspection.
    static let tornDirectory = "torn"
    /// A `.new` file older than this was left by a writer that died before renaming it.
    static let unrenamedGraceSeconds = 60.0

    /// The journal directory of the store at `storePath`: beside it, so it drains into no other store.
    static func directory(forStore storePath: String) -> String { storePath + ".audit-journal" }

    init(directory: String) {
        self.directory = directory
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let hostName = String(cString: host).map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" }
        tag = "\(String(hostName).prefix(64))-\(getpid())-\(Int64(Date().timeIntervalSince1970 * 1000))"
    }

    deinit {
        if let current { close(current.fd) }
        for r in retired { close(r.fd) }
        if directoryDescriptor >= 0 { close(directoryDescriptor) }
    }

    /// Writes one record as one frame; returns how many frames this process has written. A failed
    /// or short write throws, and a short one is cut off again so no later frame follows a torn one.
    @discardableResult
    func append(_ record: AuditRecord) throws -> Int64 {
        let frame = JournalFrame.encode(record)
        lock.lock()
        defer { lock.unlock() }
        if current == nil { current = try create() }
        guard var file = current else { throw StoreError("the audit journal is not open") }
        // One write; only a short one (a disk filling up) is continued, to learn why it stopped.
        var written = 0
        while written < frame.count {
            let n = frame.withUnsafeBytes { write(file.fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            written += n
        }
        if written == frame.count {
            file.bytes += written
            current = file
            framesWritten += 1
            return framesWritten
        }
        let reason = String(cString: strerror(errno)) + (written > 0 ? " (after \(written) of \(frame.count) bytes)" : "")
        if written > 0 && ftruncate(file.fd, off_t(file.bytes)) != 0 {
            // The torn frame stays; later frames go to a new file, and the drain keeps the tail aside.
            retired.append(file)
            current = nil
        }
        throw StoreError("cannot write the audit journal \(directory)/\(file.name): \(reason)")
    }

    private func create() throws -> OpenJournal {
        let dir = try openDirectory(create: true)
        filesCreated += 1
        let name = "\(tag)-\(filesCreated)\(Self.suffix)"
        let unrenamed = "\(tag)-\(filesCreated)\(Self.unrenamedSuffix)"
        let fd = openat(dir, unrenamed, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw fileError("cannot create the audit journal", unrenamed) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0, renameat(dir, unrenamed, dir, name) == 0 else {
            let error = fileError("cannot lock and name the audit journal", unrenamed)
            unlinkat(dir, unrenamed, 0)
            close(fd)
            throw error
        }
        return OpenJournal(name: name, fd: fd, bytes: 0)
    }

    /// The directory, made owner-only if missing; never a symlink.
    private func openDirectory(create: Bool) throws -> Int32 {
        if directoryDescriptor >= 0 { return directoryDescriptor }
        if create && mkdir(directory, 0o700) != 0 && errno != EEXIST {
            throw fileError("cannot create the audit journal directory", nil)
        }
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw fileError("cannot open the audit journal directory", nil) }
        directoryDescriptor = fd
        return fd
    }

    private func fileError(_ what: String, _ name: String?) -> StoreError {
        StoreError("\(what) \(directory)\(name.map { "/" + $0 } ?? ""): \(String(cString: strerror(errno)))")
    }

    // MARK: Reading

    /// Every record still in a journal of this directory, file by file in write order. A damaged
    /// tail is not read (a live writer's last frame may be in flight; the drain reports real damage).
    func undrainedRecords() throws -> [AuditRecord] {
        guard let dir = try existingDirectory() else { return [] }
        var records: [AuditRecord] = []
        for name in try journalNames(includingUnrenamed: false) {
            let fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            // Drained and deleted since the listing.
            guard fd >= 0 else { continue }
            defer { close(fd) }
            records += JournalFrame.decode(try Self.contents(of: fd, name: name)).records
        }
        return records
    }

    private func existingDirectory() throws -> Int32? {
        lock.lock()
        defer { lock.unlock() }
        var st = stat()
        guard lstat(directory, &st) == 0 else { return nil }
        return try openDirectory(create: false)
    }

    private func journalNames(includingUnrenamed: Bool) throws -> [String] {
        guard let names = Self.entries(of: directory) else {
            throw StoreError("cannot list the audit journal directory \(directory)")
        }
        return names.filter { $0.hasSuffix(Self.suffix) || (includingUnrenamed && $0.hasSuffix(Self.unrenamedSuffix)) }.sorted()
    }

    /// The names in a directory but "." and "..", with opendir/readdir (FileManager's listing
    /// costs every CGI start about 0.25 M instructions); nil when it cannot be listed.
    static func entries(of path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    @inline(never)
    private static func contents(of fd: Int32, name: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(bytes.count)) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw StoreError("cannot read the audit journal \(name): \(String(cString: strerror(errno)))") }
            if n == 0 { return bytes }
            bytes += chunk[0..<n]
        }
    }

    // MARK: Draining

    /// Closes this process's journal to writing and moves every own journal into `archive`;
    /// returns how many records moved. A journal whose move fails stays for the next drain.
    @discardableResult @inline(never)
    func drainOwn(into archive: AuditArchive, batchRecords: Int) throws -> Int {
        drainLock.lock()
        defer { drainLock.unlock() }
        lock.lock()
        if let file = current, file.bytes > 0 {
            retired.append(file)
            current = nil
        }
        let files = retired
        lock.unlock()
        var moved = 0
        for file in files {
            moved += try drain(fd: file.fd, name: file.name, into: archive, batchRecords: batchRecords)
            lock.lock()
            retired.removeAll { $0.name == file.name }
            lock.unlock()
            close(file.fd)
        }
        return moved
    }

    /// Moves the journals of processes that are gone (their lock is free) into `archive`.
    @discardableResult @inline(never)
    func drainOrphans(into archive: AuditArchive, batchRecords: Int) throws -> Int {
        drainLock.lock()
        defer { drainLock.unlock() }
        guard let dir = try existingDirectory() else { return 0 }
        lock.lock()
        let own = Set(retired.map(\.name) + (current.map { [$0.name] } ?? []))
        lock.unlock()
        var moved = 0
        for name in try journalNames(includingUnrenamed: true) where !own.contains(name) {
            let fd = openat(dir, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var opened = stat(), linked = stat()
            // Its writer still holds the lock: alive. The name no longer this file: drained meanwhile.
            guard fstat(fd, &opened) == 0, (opened.st_mode & S_IFMT) == S_IFREG, flock(fd, LOCK_EX | LOCK_NB) == 0,
                  fstatat(dir, name, &linked, AT_SYMLINK_NOFOLLOW) == 0,
                  linked.st_ino == opened.st_ino, linked.st_dev == opened.st_dev else { continue }
            if name.hasSuffix(Self.unrenamedSuffix),
               Date().timeIntervalSince1970 - Double(opened.st_mtim.tv_sec) < Self.unrenamedGraceSeconds { continue }
            moved += try drain(fd: fd, name: name, into: archive, batchRecords: batchRecords)
        }
        return moved
    }

    /// One locked journal into the store, batch by batch, then deleted. A damaged tail is
    /// reported and kept aside first; the frames before it are moved.
    @inline(never)
    private func drain(fd: Int32, name: String, into archive: AuditArchive, batchRecords: Int) throws -> Int {
        let bytes = try Self.contents(of: fd, name: name)
        let reading = JournalFrame.decode(bytes)
        if let damage = reading.damage {
            try keepTornTail(Array(bytes[reading.validBytes...]), of: name, damage: damage, framesKept: reading.records.count)
        }
        var start = 0
        while start < reading.records.count {
            let end = min(start + max(1, batchRecords), reading.records.count)
            try archive.archiveAudit(Array(reading.records[start..<end]))
            start = end
        }
        let dir = try openDirectory(create: false)
        guard unlinkat(dir, name, 0) == 0 || errno == ENOENT else { throw fileError("cannot delete the drained audit journal", name) }
        return reading.records.count
    }

    @inline(never)
    private func keepTornTail(_ tail: [UInt8], of name: String, damage: String, framesKept: Int) throws {
        let dir = try openDirectory(create: false)
        if mkdirat(dir, Self.tornDirectory, 0o700) != 0 && errno != EEXIST { throw fileError("cannot create", Self.tornDirectory) }
        let tornName = "\(Self.tornDirectory)/\(name).torn"
        let fd = openat(dir, tornName, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        // Kept already by a drain that stopped before deleting the journal.
        if fd < 0 && errno == EEXIST { return }
        guard fd >= 0 else { throw fileError("cannot keep the torn tail of the audit journal", tornName) }
        defer { close(fd) }
        let written = tail.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == tail.count else { throw fileError("cannot keep the torn tail of the audit journal", tornName) }
        Log.shared.error("audit journal ends in a damaged frame; the frames before it are kept, the tail is set aside",
                         ["journal": .string(name), "damage": .string(damage), "frames_kept": .integer(framesKept),
                          "tail_bytes": .integer(tail.count), "kept_at": .string("\(directory)/\(tornName)")])
    }

    // MARK: Inspection

    /// What `doctor`, `/ready` and `system_status` report: journals waiting to be drained, the
    /// records in them and when the oldest was written, and torn tails kept aside.
    struct Status {
        var pendingJournals: [String]
        var pendingRecords = 0
        /// The time of the first record of the oldest waiting journal (nil when none waits).
        var oldestPendingTime: Double?
        var tornTails: [String]
    }

    static func status(directory: String) -> Status {
        let names = Self.entries(of: directory) ?? []
        let torn = Self.entries(of: directory + "/" + tornDirectory) ?? []
        var status = Status(pendingJournals: names.filter { $0.hasSuffix(suffix) }.sorted(), tornTails: torn.sorted())
        for name in status.pendingJournals {
            let backlog = backlog(of: directory + "/" + name)
            status.pendingRecords += backlog.records
            if let first = backlog.firstTime, status.oldestPendingTime.map({ first < $0 }) ?? true { status.oldestPendingTime = first }
        }
        return status
    }

    /// The whole frames of one journal and its first record's time, from the 12-byte frame headers
    /// and the first payload's leading time field only: no payload is read or checked, so a probe
    /// costs one small read per frame however large the records are. A frame still in flight or
    /// damaged ends the count (the drain reports damage).
    static func backlog(of path: String) -> (records: Int, firstTime: Double?) {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return (0, nil) }  // drained and deleted since the listing
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return (0, nil) }
        let size = Int(st.st_size)
        var header = [UInt8](repeating: 0, count: JournalFrame.headerBytes)
        var at = 0, records = 0
        var firstTime: Double?
        while size - at >= JournalFrame.headerBytes {
            guard header.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, $0.count, off_t(at)) }) == header.count,
                  Array(header[0..<4]) == JournalFrame.magic else { break }
            let length = (0..<4).reduce(0) { $0 | Int(header[4 + $1]) << ($1 * 8) }
            guard length <= JournalFrame.maxPayloadBytes, size - at - JournalFrame.headerBytes >= length else { break }
            if records == 0 {
                var time = [UInt8](repeating: 0, count: 8)
                if length >= 8, time.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, 8, off_t(at + JournalFrame.headerBytes)) }) == 8 {
                    firstTime = Double(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(time[$1]) << UInt64($1 * 8) })
                }
            }
            records += 1
            at += JournalFrame.headerBytes + length
        }
        return (records, firstTime)
    }
}
