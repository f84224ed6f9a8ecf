import GatewaySupport

/// Reads workspace mappings from CSV: a header line `tenant,kind,principal,workspace`,
/// then one mapping a line (`kind` is user or group). Every bad line is reported with
/// its number, and nothing is imported unless all lines are good.
public enum MappingCSV {
    public static let header = "tenant,kind,principal,workspace"

    public struct Problems: Error {
        public let lines: [String]
    }

    public static func parse(_ text: String) -> Result<[WorkspaceMapping], Problems> {
        var mappings: [WorkspaceMapping] = []
        var problems: [String] = []
        var sawHeader = false
        for (i, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0.isNewline }).enumerated() {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            let number = i + 1
            if line.trimmingOWS().isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { String($0.trimmingOWS()) }
            if !sawHeader {
                sawHeader = true
                if fields.map({ $0.lowercased() }) == header.split(separator: ",").map(String.init) { continue }
                problems.append("line \(number): the first line must be the header \(header)")
                continue
            }
            guard fields.count == 4 else {
                problems.append("line \(number): expected 4 fields (\(header)), found \(fields.count)")
                continue
            }
            guard let kind = WorkspaceMapping.Kind(rawValue: fields[1].lowercased()) else {
                problems.append("line \(number): kind must be user or group, not '\(fields[1])'")
                continue
            }
            do {
                mappings.append(try WorkspaceMapping(tenant: fields[0], kind: kind, principal: fields[2], workspace: fields[3]))
            } catch {
                problems.append("line \(number): \(error)")
            }
        }
        if !sawHeader { problems.append("the file is empty: expected the header \(header)") }
        return problems.isEmpty ? .success(mappings) : .failure(Problems(lines: problems))
    }
}
