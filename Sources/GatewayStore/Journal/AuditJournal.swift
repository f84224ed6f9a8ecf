#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FoundationEssentials
import GatewaySupport

/// The audit journals of one store: a directory of append-only files, one per writing process
/// (a new one after each drain), `<host>-<pid>-<start>-<n>.journal`. A record is one `write(2)`
/// of one frame (`JournalFrame`): in the OS, so it survives a kill -9, when the write returns.
///
/// Each file is locked (`flock`) by its writer while it writes to it. The writer unlocks it when
/// it closes it to writing (at each drain round, or by dying: CGI and mod_fcgid processes die),
/// and from then on the file is any drainer's to move into the store. A file is created under a
/// `.new` name, locked, then renamed, so no drainer ever sees a journal its writer has not locked yet.
///
/// One drainer at a time per site: the drain lock (`drain.lock`, `flock`, never waited for on the
/// background step) is held by whichever process moves the unlocked journals of every process.
/// The others only close their journal and leave it to that one, so the many processes of
/// mod_fcgid never queue on the store's write lock against each other.
///
/// A process writes through lanes, one per worker thread (threads beyond `laneCount` share), each
/// with its own file and lock: the lock is held across the `write(2)`, so with one file for all
/// threads every request waited on the others' writes (a futex hand-off and a context switch per
/// record under load). A request's records come from one thread, so they stay in one file, in order.
final class AuditJournal: @unchecked Sendable {
    let directory: String
    private let tag: String
    /// Guards the process-wide state below; never held across a write. Lock order: a lane's, then this.
    private let lock = Lock()
    /// One drain at a time in this process (the background step and the one at exit).
    private let drainLock = Lock()
    private var directoryDescriptor: Int32 = -1
    private var siteDrainLock: Int32 = -1
    private let lanes: [Lane] = (0..<AuditJournal.laneCount).map { _ in Lane() }
    private var filesCreated = 0

    static let laneCount = 16

    /// One writer's file: taken by the thread whose lane it is, and briefly by the drain.
    private final class Lane {
        let lock = Lock()
        var current: OpenJournal?
        var framesWritten: Int64 = 0
    }

    private struct OpenJournal {
        let name: String
        let fd: Int32
        var bytes: Int
    }

    static let suffix = ".journal"
    static let unrenamedSuffix = ".journal.new"
    /// Held by the process that drains (see the type's comment).
    static let drainLockName = "drain.lock"
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
        for lane in lanes { if let current = lane.current { close(current.fd) } }
        if siteDrainLock >= 0 { close(siteDrainLock) }
        if directoryDescriptor >= 0 { close(directoryDescriptor) }
    }

    /// Writes one record as one frame; returns how many frames this thread's lane has written. A
    /// failed or short write throws, and a short one is cut off again so no later frame follows a torn one.
    @discardableResult
    func append(_ record: AuditRecord) throws -> Int64 {
        let frame = JournalFrame.encode(record)
        let lane = lanes[WriterLane.index(of: lanes.count)]
        lane.lock.lock()
        defer { lane.lock.unlock() }
        if lane.current == nil { lane.current = try create() }
        guard var file = lane.current else { throw StoreError("the audit journal is not open") }
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
            lane.current = file
            lane.framesWritten += 1
            return lane.framesWritten
        }
        let reason = String(cString: strerror(errno)) + (written > 0 ? " (after \(written) of \(frame.count) bytes)" : "")
        if written > 0 && ftruncate(file.fd, off_t(file.bytes)) != 0 {
            // The torn frame stays; later frames go to a new file, and the drain keeps the tail aside.
            retire(lane)
        }
        throw StoreError("cannot write the audit journal \(directory)/\(file.name): \(reason)")
    }

    private func create() throws -> OpenJournal {
        let (dir, number): (Int32, Int) = try lock.withLock {
            filesCreated += 1
            return (try openDirectory(create: true), filesCreated)
        }
        let name = "\(tag)-\(number)\(Self.suffix)"
        let unrenamed = "\(tag)-\(number)\(Self.unrenamedSuffix)"
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

    /// The whole file, read into one buffer of its size (a writer may still be appending: what
    /// comes after the size read is left for the next read).
    @inline(never)
    private static func contents(of fd: Int32, name: String) throws -> [UInt8] {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw StoreError("cannot read the audit journal \(name): \(String(cString: strerror(errno)))") }
        let size = Int(st.st_size)
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            while initialized < size {
                let n = pread(fd, buffer.baseAddress! + initialized, size - initialized, off_t(initialized))
                if n < 0 && errno == EINTR { continue }
                if n < 0 { failure = errno }
                if n <= 0 { break }
                initialized += n
            }
        }
        guard failure == 0 else { throw StoreError("cannot read the audit journal \(name): \(String(cString: strerror(failure)))") }
        return bytes
    }

    // MARK: Draining

    /// Closes a lane's journal to writing: it is unlocked, so whichever process drains moves it.
    /// Must be called with the lane's lock held.
    private func retire(_ lane: Lane) {
        guard let file = lane.current else { return }
        flock(file.fd, LOCK_UN)
        close(file.fd)
        lane.current = nil
    }

    /// Closes this process's journal to writing and, unless another process of the site is
    /// draining (`waitingUpTo` seconds for it to finish), moves every journal no writer holds into
    /// `archive`: this process's, those other live processes closed, those of processes that are
    /// gone. Returns how many records moved (0 when another drainer has them). A journal whose
    /// move fails stays for the next drain.
    @discardableResult @inline(never)
    func drain(into archive: AuditArchive, batchRecords: Int, waitingUpTo seconds: Double = 0,
               pacing: DrainPacing? = nil) throws -> Int {
        drainLock.lock()
        defer { drainLock.unlock() }
        for lane in lanes {
            lane.lock.lock()
            if let file = lane.current, file.bytes > 0 { retire(lane) }
            lane.lock.unlock()
        }
        guard let dir = try existingDirectory(), try lockSiteDrain(in: dir, waitingUpTo: seconds) else { return 0 }
        defer { flock(siteDrainLock, LOCK_UN) }
        return try drainUnlocked(in: dir, into: archive, batchRecords: batchRecords, pacing: pacing)
    }

    /// Takes the site's drain lock, trying again every millisecond for up to `seconds`.
    private func lockSiteDrain(in dir: Int32, waitingUpTo seconds: Double) throws -> Bool {
        if siteDrainLock < 0 {
            let fd = openat(dir, Self.drainLockName, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw fileError("cannot open the audit journal drain lock", Self.drainLockName) }
            var st = stat()
            guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
                close(fd)
                throw StoreError("the audit journal drain lock \(directory)/\(Self.drainLockName) is not a regular file")
            }
            siteDrainLock = fd
        }
        let deadline = Date(timeIntervalSinceNow: seconds)
        while flock(siteDrainLock, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else { throw fileError("cannot lock", Self.drainLockName) }
            guard Date() < deadline else { return false }
            usleep(1_000)
        }
        return true
    }

    /// Every journal no writer holds, in write order per process, into `archive`. After a failed
    /// move the rest are only counted, once each, into the waiting counts `/ready` reads.
    private func drainUnlocked(in dir: Int32, into archive: AuditArchive, batchRecords: Int, pacing: DrainPacing?) throws -> Int {
        let own = Set(lanes.compactMap { lane in lane.lock.withLock { lane.current?.name } })
        let counted = WaitingCounts.read(directory: directory)
        var stillWaiting = WaitingCounts()
        var moved = 0
        var failure: Error?
        for name in try journalNames(includingUnrenamed: true).sorted(by: Self.writeOrder) where !own.contains(name) {
            let fd = openat(dir, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var opened = stat(), linked = stat()
            // Its writer still holds the lock: being written. The name no longer this file: drained meanwhile.
            guard fstat(fd, &opened) == 0, (opened.st_mode & S_IFMT) == S_IFREG, flock(fd, LOCK_EX | LOCK_NB) == 0,
                  fstatat(dir, name, &linked, AT_SYMLINK_NOFOLLOW) == 0,
                  linked.st_ino == opened.st_ino, linked.st_dev == opened.st_dev else { continue }
            if name.hasSuffix(Self.unrenamedSuffix),
               Date().timeIntervalSince1970 - Double(opened.st_mtim.tv_sec) < Self.unrenamedGraceSeconds { continue }
            if failure == nil {
                do {
                    moved += try drain(fd: fd, name: name, into: archive, batchRecords: batchRecords, pacing: pacing)
                    continue
                } catch {
                    failure = error
                }
            }
            if name.hasSuffix(Self.suffix) { stillWaiting.files[name] = counted.files[name] ?? Self.backlog(of: fd) }
        }
        if stillWaiting != counted {
            // Without them the probes count from the frame headers: slower, never wrong.
            do { try stillWaiting.write(directory: directory) } catch {
                Log.shared.warning("cannot keep the audit journal waiting counts", ["error": .string("\(error)")])
            }
        }
        if let failure { throw failure }
        return moved
    }

    /// `<host>-<pid>-<start>-<n>`: a process's files by their number (file 10 after file 9).
    static func writeOrder(_ a: String, _ b: String) -> Bool {
        func key(_ name: String) -> (String, Int) {
            let stem = name.hasSuffix(unrenamedSuffix) ? name.dropLast(unrenamedSuffix.count) : name.dropLast(suffix.count)
            guard let dash = stem.lastIndex(of: "-"), let n = Int(stem[stem.index(after: dash)...]) else { return (String(stem), 0) }
            return (String(stem[..<dash]), n)
        }
        return key(a) < key(b)
    }

    /// One locked journal into the store, batch by batch, then deleted. A damaged tail is
    /// reported and kept aside first; the frames before it are moved.
    @inline(never)
    private func drain(fd: Int32, name: String, into archive: AuditArchive, batchRecords: Int, pacing: DrainPacing?) throws -> Int {
        let bytes = try Self.contents(of: fd, name: name)
        let scan = JournalFrame.scan(bytes)
        if let damage = scan.damage {
            try keepTornTail(Array(bytes[scan.validBytes...]), of: name, damage: damage, framesKept: scan.frames.count)
        }
        var start = 0
        while start < scan.frames.count {
            let end = min(start + max(1, batchRecords), scan.frames.count)
            pacing?.batchBegins()
            try archive.archiveAudit(JournalBatch(bytes: bytes, frames: scan.frames[start..<end]))
            pacing?.batchEnded(records: end - start)
            start = end
        }
        let dir = try openDirectory(create: false)
        guard unlinkat(dir, name, 0) == 0 || errno == ENOENT else { throw fileError("cannot delete the drained audit journal", name) }
        return scan.frames.count
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
}
