import MCPJSON

/// An executeQueries answer read carefully: Power BI reports problems in `error` objects at
/// the top, per result and per table, and truncates big results with HTTP 200.
package struct DAXResult {
    struct Problem {
        let level: String
        let code: String?
        let message: String

        var json: JSONValue {
            var o = JSONObject(pairs: [("level", .string(level)), ("message", .string(message))])
            if let code { o["code"] = .string(code) }
            return .object(o)
        }
    }

    package var columns: [String] = []
    package var rows: [JSONValue] = []
    /// Rows Power BI returned before our cap.
    package var returnedRows = 0
    var problems: [Problem] = []
    var truncationReasons: [String] = []
    var informationProtectionLabel: JSONValue?

    var truncated: Bool { !truncationReasons.isEmpty }

    /// Reads the body of a 200 answer, keeping at most `maxRows` rows. Nil when it lacks the
    /// documented shape: each level holds the next one (results, tables, rows) or says why not
    /// with an `error`, so a body missing both is never read as an empty result.
    package static func read(_ json: JSONValue?, maxRows: Int) -> DAXResult? {
        guard let root = json?.objectValue else { return nil }
        var r = DAXResult()
        r.informationProtectionLabel = root["informationProtectionLabel"]
        r.note(root["error"], level: "response")
        let results = root["results"]?.arrayValue ?? []
        if results.count > 1 { r.truncationReasons.append("Power BI returned \(results.count) results; only the first is shown") }
        if let first = results.first {
            r.note(first["error"], level: "result")
            let tables = first["tables"]?.arrayValue ?? []
            if tables.count > 1 { r.truncationReasons.append("the query returned \(tables.count) tables; only the first is shown") }
            if let table = tables.first {
                r.note(table["error"], level: "table")
                guard let rows = table["rows"]?.arrayValue ?? (r.problems.isEmpty ? nil : []) else { return nil }
                r.returnedRows = rows.count
                r.rows = Array(rows.prefix(maxRows))
                if rows.count > maxRows { r.truncationReasons.append("only the first \(maxRows) of \(rows.count) rows are shown (row cap)") }
            } else if r.problems.isEmpty {
                return nil
            }
        } else if r.problems.isEmpty {
            return nil
        }
        // An error next to rows means Power BI stopped early (row, value or size limit).
        if !r.problems.isEmpty && r.returnedRows > 0 {
            r.truncationReasons.append("Power BI stopped the result early: " + r.problems.map(\.message).joined(separator: "; "))
        }
        var seen = Set<String>()
        for row in r.rows {
            for key in row.objectValue?.keys ?? [] where seen.insert(key).inserted { r.columns.append(key) }
        }
        return r
    }

    private mutating func note(_ error: JSONValue?, level: String) {
        guard let e = error, !e.isNull else { return }
        let code = e["code"]?.stringValue
        var message = e["message"]?.stringValue
            ?? e["pbi.error"]?["details"]?.arrayValue?.compactMap { $0["detail"]?["value"]?.stringValue }.joined(separator: " ")
            ?? e.stringValue ?? "unspecified error"
        if message.isEmpty { message = code ?? "unspecified error" }
        problems.append(Problem(level: level, code: code, message: message.count > 1000 ? String(message.prefix(1000)) + "…" : message))
    }

    package var json: JSONValue {
        var o = JSONObject()
        o["columns"] = JSONValue(columns)
        o["rows"] = .array(rows)
        o["rowCount"] = .integer(rows.count)
        o["truncated"] = .bool(truncated)
        o["truncationReasons"] = JSONValue(truncationReasons)
        o["errors"] = .array(problems.map(\.json))
        if let l = informationProtectionLabel, !l.isNull { o["informationProtectionLabel"] = l }
        return .object(o)
    }
}
