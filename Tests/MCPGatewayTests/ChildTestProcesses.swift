import Foundation

/// Runs one test of this bundle in `count` child processes at once, each with the environment
/// `environment(child)` adds: how the tests get several real processes on one store.
enum ChildTestProcesses {
    static func start(_ test: String, count: Int, environment: (Int) -> [String: String]) throws -> [Process] {
        try (0..<count).map { child in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
            p.arguments = [test]
            p.environment = ProcessInfo.processInfo.environment.merging(environment(child)) { $1 }
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
    }
}
