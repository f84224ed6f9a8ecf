import FoundationEssentials
import GatewaySupport

/// The whole records in each journal a drain found but could not move (the store down), and the
/// time of its first record: kept by the drainer (one at a time per site, under the drain lock)
/// in `waiting.counts` beside the journals, and read by `/ready`, `system_status` and `doctor`. A
/// probe during a long store outage then reads one small file instead of one frame header per
/// waiting record. Only journals no writer holds are counted, and those no longer change.
struct WaitingCounts: Equatable {
    struct Entry: Equatable {
        var records: Int
        var firstTime: Double?
    }

    var files: [String: Entry] = [:]

    static let fileName = "waiting.counts"
    /// Far above any real backlog's line count; a bigger file is not read.
    static let maxBytes = 64 << 20

    /// The counts as last written; none when the file is missing or unreadable (the probes then
    /// count from the frame headers, as for any journal not listed).
    static func read(directory: String) -> WaitingCounts {
        guard let bytes = try? PrivateFiles.readSecret(directory + "/" + fileName, what: "the audit journal waiting counts",
                                                       maxBytes: maxBytes) else { return WaitingCounts() }
        var counts = WaitingCounts()
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 3, let records = Int(fields[1]), records >= 0 else { continue }
            let firstTime = UInt64(fields[2], radix: 16).map { Double(bitPattern: $0) }
            counts.files[String(fields[0])] = Entry(records: records, firstTime: firstTime)
        }
        return counts
    }

    /// One line per journal, `name records first-time`, the time as its bits in hex ("-" for none).
    func write(directory: String) throws {
        var text = ""
        for (name, entry) in files.sorted(by: { $0.key < $1.key }) {
            text += "\(name) \(entry.records) \(entry.firstTime.map { String($0.bitPattern, radix: 16) } ?? "-")\n"
        }
        do {
            try PrivateFiles.writeAtomically(directory + "/" + Self.fileName, Array(text.utf8))
        } catch let e as FileSystemError {
            throw StoreError("cannot keep the audit journal waiting counts: \(e.description)")
        }
    }
}
