/// Who an operator has cut off.
public struct Block: Equatable, Sendable {
    public enum Kind: String, CaseIterable, Sendable {
        case user, tenant, clientApp = "client_app"
    }
    public let kind: Kind
    public let id: String
    /// Seconds since 1970; nil blocks until unblocked.
    public let until: Int64?
    public let reason: String?

    public init(kind: Kind, id: String, until: Int64?, reason: String?) {
        self.kind = kind
        self.id = id
        self.until = until
        self.reason = reason
    }
}

/// Operator blocks: written by `mcp-fcgi block`/`unblock`, checked on every request.
public protocol BlockList: AnyObject, Sendable {
    func addBlock(_ block: Block) throws
    func removeBlock(kind: Block.Kind, id: String) throws -> Bool
    func blocks(now: Int64) throws -> [Block]
    /// The first active block that matches any of these (kind, id) pairs.
    func activeBlock(matching: [(Block.Kind, String)], now: Int64) throws -> Block?
    /// The same, the pairs made only when some block could match: nearly every check on the
    /// request path finds no block at all, and making the canonical ids costs more than that.
    func activeBlock(now: Int64, matchingKeys keys: () -> [(Block.Kind, String)]) throws -> Block?
}

extension BlockList {
    public func activeBlock(now: Int64, matchingKeys keys: () -> [(Block.Kind, String)]) throws -> Block? {
        try activeBlock(matching: keys(), now: now)
    }
}
