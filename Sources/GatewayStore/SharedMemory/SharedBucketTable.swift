import CSharedBuckets
import GatewayCrypto
import FoundationEssentials
import Glibc
import GatewaySupport

/// The rate limits of a one-host site, in a file every process maps (see `shared_buckets.c`):
/// a take is a few hundred instructions under a process-shared mutex, no system call and no
/// database write, and holds exactly across every process and thread. Buckets are named by the
/// first 128 bits of their key's SHA-256. The same file carries the blocks' generation number.
public final class SharedBucketTable: RateLimiter, BlockChangeSignal, @unchecked Sendable {
    private let table: OpaquePointer
    public let path: String
    /// Keys' digests as worked out before: a client's requests take the same user and tenant
    /// buckets again and again, and a SHA-256 of each key on each request was most of a take.
    private let digests = KeyDigests()

    /// 65,536 slots (4 MiB): a new bucket goes within 64 slots of its home, reusing one that has
    /// refilled to its burst; with none free there, takes fail (and admission refuses, 503).
    public static let defaultSlots: UInt32 = 65_536

    /// The file beside a SQLite store.
    public static func path(besideStore storePath: String) -> String { storePath + ".limits" }

    public init(path: String, slots: UInt32 = defaultSlots) throws {
        guard let t = sb_open(path, slots) else {
            let reason: String
            switch errno {
            case EPROTO: reason = "it is not a rate-limit table of this version (foreign or damaged); remove it to start afresh"
            case EPERM: reason = "it is not owned by this user or is readable by others"
            case ELOOP: reason = "it is a symbolic link"
            default: reason = String(cString: strerror(errno))
            }
            throw StoreError("cannot map the rate-limit table \(path): \(reason)")
        }
        table = t
        self.path = path
    }

    deinit { sb_close(table) }

    public var capacity: UInt32 { sb_capacity(table) }

    public func take(_ buckets: [RateBucket], now: Double) throws -> Double? {
        guard !buckets.isEmpty else { return nil }
        guard buckets.count <= Int(SB_MAX_TAKE) else { throw StoreError("a take may touch at most \(SB_MAX_TAKE) buckets") }
        var wait = 0.0
        let result = withUnsafeTemporaryAllocation(of: sb_bucket.self, capacity: buckets.count) { out -> Int32 in
            for (i, b) in buckets.enumerated() {
                out[i] = sb_bucket(digest: digests.digest(of: b.key), per_minute: b.perMinute, burst: b.burst)
            }
            return sb_take(table, out.baseAddress, UInt32(buckets.count), now, &wait)
        }
        switch result {
        case 0: return nil
        case 1: return wait
        default:
            let code = errno
            switch code {
            case ENOSPC: throw StoreError("the rate-limit table \(path) has no free slot for a new bucket")
            case EINVAL: throw StoreError("invalid rate-limit buckets (limits must be positive, keys distinct)")
            default: throw StoreError("the rate-limit table \(path) is unusable: \(String(cString: strerror(code)))")
            }
        }
    }

    // MARK: BlockChangeSignal

    public var stamp: UInt64? { sb_generation(table) }
    public func announce() throws { _ = sb_bump_generation(table) }
}

/// The same table, opened and mapped on first use rather than when the store opens: a process
/// that never counts a rate limit (limits off) and never compares the blocks' generation (a CGI
/// process answers one request, see `BlockCache`) never touches the file. A table that cannot be
/// mapped fails the take that needed it with the same error as at start (admission refuses,
/// 503) and is tried again on the next use; its stamp is then unknown, so blocks are read afresh.
public final class SharedBucketTableOnFirstUse: RateLimiter, BlockChangeSignal, @unchecked Sendable {
    public let path: String
    private let slots: UInt32
    private let lock = Lock()
    private var table: SharedBucketTable?

    public init(path: String, slots: UInt32 = SharedBucketTable.defaultSlots) {
        self.path = path
        self.slots = slots
    }

    /// Whether the file has been mapped by this process.
    public var isMapped: Bool {
        lock.lock()
        defer { lock.unlock() }
        return table != nil
    }

    private func mapped() throws -> SharedBucketTable {
        lock.lock()
        defer { lock.unlock() }
        if let table { return table }
        let opened = try SharedBucketTable(path: path, slots: slots)
        table = opened
        return opened
    }

    public func take(_ buckets: [RateBucket], now: Double) throws -> Double? {
        guard !buckets.isEmpty else { return nil }
        return try mapped().take(buckets, now: now)
    }

    public var stamp: UInt64? { (try? mapped())?.stamp }
    public func announce() throws { try mapped().announce() }
}

/// A bucket's name in the table: the first 128 bits of its key's SHA-256, remembered for the
/// last keys seen. Bounded: emptied when full, so no stream of distinct keys makes it grow
/// past `limit` entries.
final class KeyDigests: @unchecked Sendable {
    typealias Digest = (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                        UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)
    /// Two words, not the tuple: a dictionary of tuples copies them through generic witnesses.
    private struct Words { let w0: UInt64, w1: UInt64 }

    static let limit = 1024
    private let lock = Lock()
    private var known: [String: Words] = [:]

    func digest(of key: String) -> Digest {
        lock.lock()
        let remembered = known[key]
        lock.unlock()
        let words = remembered ?? remember(key)
        var out: Digest = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &out) { o in
            withUnsafeBytes(of: (words.w0, words.w1)) { o.copyMemory(from: $0) }
        }
        return out
    }

    /// How many keys are remembered (for tests).
    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return known.count
    }

    private func remember(_ key: String) -> Words {
        var key = key
        let d = key.withUTF8 { SHA256Digest(UnsafeRawBufferPointer($0)) }
        let words = Words(w0: d.w0, w1: d.w1)
        lock.lock()
        if known.count >= Self.limit { known.removeAll(keepingCapacity: true) }
        known[key] = words
        lock.unlock()
        return words
    }
}
