/// Whole tables as text, for `mcp-fcgi store migrate` (copying a store to another engine).
extension SQLiteStore {
    /// Every row of `table`'s `columns`, in insertion order; numbers as their shortest exact text, NULL as nil.
    /// `table` and `columns` come from the migration's own fixed list, never from input.
    package func exportRows(table: String, columns: [String]) throws -> [[String?]] {
        try db.transaction(write: false) { db in
            try db.query("SELECT \(columns.joined(separator: ", ")) FROM \(table) ORDER BY rowid").map { row in
                row.map { value -> String? in
                    switch value {
                    case .text(let s): return s
                    case .int(let n): return String(n)
                    case .double(let d): return d.description
                    case .null: return nil
                    }
                }
            }
        }
    }
}
