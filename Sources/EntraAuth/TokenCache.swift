import GatewayCrypto

/// A bounded LRU map from SHA-256(token) to the Principal it verified as, so a
/// token seen again skips base64, JSON and RSA work. Entries die at their own
/// expiry (exp plus the clock skew the verifier allowed). Only digests are
/// stored, never tokens. Thread-safe; the lock covers a few pointer moves.
final class TokenCache: @unchecked Sendable {
    private struct Node {
        var key: SHA256Digest
        var principal: Principal
        var validUntil: Int64
        var prev: Int
        var next: Int
    }

    let capacity: Int
    private let lock = Lock()
    private var index: [SHA256Digest: Int] = [:]
    private var nodes: [Node] = []
    private var head = -1  // most recently used
    private var tail = -1  // least recently used

    init(capacity: Int) {
        self.capacity = max(0, capacity)
        index.reserveCapacity(self.capacity)
        nodes.reserveCapacity(self.capacity)
    }

    var count: Int { lock.withLock { index.count } }

    func lookup(_ key: SHA256Digest, now: Int64) -> Principal? {
        lock.withLock {
            guard let i = index[key] else { return nil }
            guard now < nodes[i].validUntil else { return nil }  // the verifier reports the precise error
            moveToFront(i)
            return nodes[i].principal
        }
    }

    func insert(_ key: SHA256Digest, principal: Principal, validUntil: Int64) {
        guard capacity > 0 else { return }
        lock.withLock {
            if let i = index[key] {
                nodes[i].principal = principal
                nodes[i].validUntil = validUntil
                moveToFront(i)
                return
            }
            let i: Int
            if nodes.count < capacity {
                nodes.append(Node(key: key, principal: principal, validUntil: validUntil, prev: -1, next: -1))
                i = nodes.count - 1
            } else {
                // Reuse the least recently used slot.
                i = tail
                unlink(i)
                index[nodes[i].key] = nil
                nodes[i].key = key
                nodes[i].principal = principal
                nodes[i].validUntil = validUntil
            }
            index[key] = i
            pushFront(i)
        }
    }

    private func unlink(_ i: Int) {
        let p = nodes[i].prev, n = nodes[i].next
        if p >= 0 { nodes[p].next = n } else { head = n }
        if n >= 0 { nodes[n].prev = p } else { tail = p }
        nodes[i].prev = -1
        nodes[i].next = -1
    }

    private func pushFront(_ i: Int) {
        nodes[i].prev = -1
        nodes[i].next = head
        if head >= 0 { nodes[head].prev = i }
        head = i
        if tail < 0 { tail = i }
    }

    private func moveToFront(_ i: Int) {
        guard head != i else { return }
        unlink(i)
        pushFront(i)
    }
}
