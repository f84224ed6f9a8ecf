import FoundationEssentials
import GatewaySupport

/// The audit trail with one `write(2)` per record instead of a store transaction: records go to
/// this process's journal (`AuditJournal`) and a background step moves them into the store in
/// batches (`AuditArchive`). Reads see journal and store as one. The sample bucket of
/// unauthenticated refusals stays in the shared rate limiter, so it holds across processes;
/// it is off the path of authenticated requests.
public final class JournaledAuditLog: AuditLog, @unchecked Sendable {
    let journal: AuditJournal
    private let store: AuditLog & AuditArchive
    private let sampleLimiter: RateLimiter
    /// Records a store transaction of the drain takes at most.
    let batchRecords: Int
    /// A drain round runs when this many records wait, or `drainInterval` seconds after the first
    /// did. Each round closes this process's journals and the next record opens new ones, so the
    /// rounds are kept few: a file created and deleted per lane every 0.2 s, in each of mod_fcgid's
    /// twenty processes, made ext4's inode allocator scan its recently deleted inodes on every
    /// create (a quarter of each process's CPU time under load, measured with perf).
    let drainAfterRecords: Int
    let drainInterval: Double
    /// How long a drain outside the background step (at exit, by a command) waits for another
    /// process's drain to finish before it leaves the journals to that one.
    static let foregroundDrainWait = 5.0
    /// An idle drain thread still wakes this many `drainInterval`s apart, for journals other
    /// processes left (closed, or of processes that are gone).
    static let idleWakeEvery = 25
    /// A round paces its batches (`DrainPacing`) for this many rounds' worth of records, then
    /// runs flat out: a backlog is moved at full speed.
    static let pacedRoundsOfRecords = 4

    private let wake = Condition()
    private var waiting = 0
    private var draining = false
    /// Retention the request path asked for, left to the drain thread (`pruneAuditSoon`).
    private var pruneBefore: Double?

    public init(directory: String, store: AuditLog & AuditArchive, sampleLimiter: RateLimiter,
                batchRecords: Int = 256, drainAfterRecords: Int = 8192, drainInterval: Double = 1) {
        journal = AuditJournal(directory: directory)
        self.store = store
        self.sampleLimiter = sampleLimiter
        self.batchRecords = batchRecords
        self.drainAfterRecords = drainAfterRecords
        self.drainInterval = drainInterval
    }

    /// The journal directory that belongs to the store at `storePath`.
    public static func directory(forStore storePath: String) -> String { AuditJournal.directory(forStore: storePath) }

    /// What `doctor` reports of the journals of the store at `storePath`.
    public struct Status: Sendable {
        public let directory: String
        /// Journals not yet moved into the store (live writers' among them).
        public let pendingJournals: Int
        /// Records in those journals: how far behind the shipping into the store is.
        public let pendingRecords: Int
        /// When the oldest waiting record was written (nil when none waits).
        public let oldestPendingTime: Double?
        /// Damaged tails found by drains, kept in `torn/` for inspection.
        public let tornTails: [String]

        /// Whole seconds the oldest waiting record has waited (nil when none waits).
        public func oldestPendingAge(now: Double) -> Int? { oldestPendingTime.map { max(0, Int(now - $0)) } }
    }

    public static func status(forStore storePath: String) -> Status {
        let directory = directory(forStore: storePath)
        let found = AuditJournal.status(directory: directory)
        return Status(directory: directory, pendingJournals: found.pendingJournals.count, pendingRecords: found.pendingRecords,
                      oldestPendingTime: found.oldestPendingTime, tornTails: found.tornTails)
    }

    public func appendAudit(_ record: AuditRecord) throws { try write(record) }

    public func beginAudit(_ record: AuditRecord) throws -> AuditEntry {
        var started = record
        started.completed = false
        return AuditEntry(sequence: try write(started))
    }

    /// The completed record follows the begun one in the journal; the archive replaces the
    /// unfinished row of the same request id with it.
    public func completeAudit(_ entry: AuditEntry, with record: AuditRecord) throws {
        var completed = record
        completed.completed = true
        try write(completed)
    }

    public func appendSampledAudit(_ record: AuditRecord, sample: RateBucket) throws -> Bool {
        guard try sampleLimiter.take([sample], now: record.time) == nil else { return false }
        try write(record)
        return true
    }

    /// Journal first, then store: a record drained between the two reads is seen at least
    /// once, and the merge keeps one per request, its time and id (the completed one, where both are there).
    public func audit(since: Double, tenant: String?, limit: Int) throws -> [AuditRecord] {
        let pending = try journal.undrainedRecords().filter { $0.time >= since && (tenant == nil || $0.tenant == tenant) }
        let stored = try store.audit(since: since, tenant: tenant, limit: limit)
        guard !pending.isEmpty else { return stored }
        var merged: [AuditRecord] = []
        struct Request: Hashable { let time: UInt64, id: String }
        var index: [Request: Int] = [:]
        for r in stored + pending {
            let request = Request(time: r.time.bitPattern, id: r.requestId)
            if let i = index[request] {
                if !merged[i].completed && r.completed { merged[i] = r }
            } else {
                index[request] = merged.count
                merged.append(r)
            }
        }
        let ordered = merged.enumerated().sorted { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }.map(\.element)
        return Array(ordered.suffix(max(0, limit)))
    }

    public func pruneAudit(before: Double) throws -> Int { try store.pruneAudit(before: before) }

    /// With the drain thread running, it prunes after its next round; otherwise (a CGI process) now.
    public func pruneAuditSoon(before: Double) {
        wake.lock()
        guard draining else {
            wake.unlock()
            _ = try? store.pruneAudit(before: before)
            return
        }
        pruneBefore = max(pruneBefore ?? before, before)
        wake.unlock()
    }

    /// Moves this process's journal and every other one no writer holds into the store now
    /// (after the drain of another process, if one is under way).
    @discardableResult
    public func drainAll() throws -> Int {
        try journal.drain(into: store, batchRecords: batchRecords, waitingUpTo: Self.foregroundDrainWait)
    }

    /// At process start: journals left behind are picked up unless another process is draining,
    /// and with `background` a thread drains from here on (a CGI process has one request; its
    /// journal is drained at exit).
    public func beginServing(background: Bool) {
        if !background {
            do { try journal.drain(into: store, batchRecords: batchRecords) } catch { report(error) }
            return
        }
        wake.lock()
        defer { wake.unlock() }
        guard !draining else { return }
        draining = true
        let rc = startDetachedThread(name: "audit-drain") { [self] in drainLoop() }
        if rc != 0 {
            draining = false
            Log.shared.error("cannot start the audit drain thread; records wait in the journal", ["errno": .integer(Int(rc))])
        }
    }

    /// At process exit: this process's journal into the store. One that cannot be moved now
    /// stays in the directory, where reads still see it and the next drain picks it up.
    public func endServing() {
        do { try journal.drain(into: store, batchRecords: batchRecords, waitingUpTo: Self.foregroundDrainWait) } catch { report(error) }
    }

    /// The drain thread sleeps until a record waits: the first record after a drain wakes it
    /// (one wake-up a round, not one a record), and so does the `drainAfterRecords`th.
    @discardableResult
    private func write(_ record: AuditRecord) throws -> Int64 {
        let frames = try journal.append(record)
        wake.lock()
        waiting += 1
        if waiting == 1 || waiting == drainAfterRecords { wake.signal() }
        wake.unlock()
        return frames
    }

    private func drainLoop() {
        while true { drainRound(idleUntil: .after(seconds: drainInterval * Double(Self.idleWakeEvery))) }
    }

    /// Kept out of line: the optimizer's loop passes take minutes over the loop with all this inlined.
    /// Never waits for another process's drain: that one moves this process's journal too.
    @inline(never)
    private func drainRound(idleUntil: Condition.Deadline) {
        wake.lock()
        // Idle, it sleeps until a record waits or `idleUntil`; once a record
        // waits, it drains within `drainInterval`, or at once when `drainAfterRecords` wait.
        while waiting == 0 && wake.wait(until: idleUntil) {}
        if waiting > 0 {
            let deadline = Condition.Deadline.after(seconds: drainInterval)
            while waiting < drainAfterRecords && wake.wait(until: deadline) {}
        }
        waiting = 0
        let prune = pruneBefore
        pruneBefore = nil
        wake.unlock()
        let pacing = DrainPacing(pacedRecords: Self.pacedRoundsOfRecords * drainAfterRecords)
        do { try journal.drain(into: store, batchRecords: batchRecords, pacing: pacing) } catch { report(error) }
        if let prune { _ = try? store.pruneAudit(before: prune) }
    }

    private func report(_ error: Error) {
        Log.shared.error("cannot move the audit journal into the store; it stays for the next try", ["error": .string("\(error)")])
    }
}
