import FoundationEssentials
import GatewayStore

/// Blocks are read from the server on every request (one indexed statement), so a block
/// written on one host refuses on every host at the next request.
extension PostgresStore: BlockList {
    public func addBlock(_ b: Block) throws {
        try pool.withConnection { c in
            try c.query("""
                INSERT INTO blocks (kind, id, until, reason, created) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (kind, id) DO UPDATE SET until = excluded.until, reason = excluded.reason, created = excluded.created
                """, [.text(b.kind.rawValue), .text(b.id), b.until.map { .int($0) } ?? .null, .optional(b.reason),
                      .int(Int64(Date().timeIntervalSince1970))])
        }
    }

    public func removeBlock(kind: Block.Kind, id: String) throws -> Bool {
        try pool.withConnection { c in
            try c.query("DELETE FROM blocks WHERE kind = $1 AND id = $2 RETURNING id", [.text(kind.rawValue), .text(id)]).count > 0
        }
    }

    public func blocks(now: Int64) throws -> [Block] {
        try pool.withConnection { c in
            try c.query("SELECT kind, id, until, reason FROM blocks WHERE until IS NULL OR until > $1 ORDER BY kind, id", [.int(now)])
                .compactMap(Self.block)
        }
    }

    public func activeBlock(matching keys: [(Block.Kind, String)], now: Int64) throws -> Block? {
        guard !keys.isEmpty else { return nil }
        return try pool.withConnection { c in
            try c.query("""
                SELECT kind, id, until, reason FROM blocks
                WHERE (kind, id) IN (SELECT * FROM unnest($1::text[], $2::text[])) AND (until IS NULL OR until > $3)
                ORDER BY kind, id LIMIT 1
                """, [.textArray(keys.map(\.0.rawValue)), .textArray(keys.map(\.1)), .int(now)]).first.flatMap(Self.block)
        }
    }

    private static func block(_ r: PGRow) -> Block? {
        guard let kind = r.text(0).flatMap(Block.Kind.init(rawValue:)), let id = r.text(1) else { return nil }
        return Block(kind: kind, id: id, until: r.int(2), reason: r.text(3))
    }
}
