import Foundation
import GatewayStore
import GatewaySupport
import XCTest

/// Root-run operator commands hand the files they created to the service user, who owns the
/// state directory and so could have planted symlinks there: no link may be followed.
final class StateDirectoryTests: XCTestCase {
    func testHandOverGivesRootOwnedFilesToTheDirectoryOwnerAndNeverFollowsALink() throws {
        try XCTSkipUnless(geteuid() == 0, "hand-over only happens as root")
        let base = NSTemporaryDirectory() + "state-handover-" + UUID().uuidString
        let dir = base + "/state"
        try StateDirectory.ensure(dir)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let serviceUser: uid_t = 65534, serviceGroup: gid_t = 65534  // nobody
        XCTAssertEqual(chown(dir, serviceUser, serviceGroup), 0)
        // A file outside the directory that root owns, and a link to it planted inside.
        let victim = base + "/victim"
        XCTAssertTrue(FileManager.default.createFile(atPath: victim, contents: Array("secret".utf8).withUnsafeBytes { Data($0) }))
        XCTAssertEqual(symlink(victim, dir + "/mcp-fcgi.db-wal"), 0)
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/mcp-fcgi.db", contents: Data()))

        StateDirectory.handToServiceUser([dir + "/mcp-fcgi.db", dir + "/mcp-fcgi.db-wal", dir + "/missing"], in: dir)

        var st = stat()
        XCTAssertEqual(stat(dir + "/mcp-fcgi.db", &st), 0)
        XCTAssertEqual(st.st_uid, serviceUser, "the file root created goes to the service user")
        XCTAssertEqual(stat(victim, &st), 0)
        XCTAssertEqual(st.st_uid, 0, "the link's target stays root's")
        XCTAssertEqual(lstat(dir + "/mcp-fcgi.db-wal", &st), 0)
        XCTAssertEqual(st.st_uid, 0, "the link itself is left alone too")
    }

    func testNothingIsHandedOverWhenRootOwnsTheDirectory() throws {
        try XCTSkipUnless(geteuid() == 0, "hand-over only happens as root")
        let dir = NSTemporaryDirectory() + "state-root-" + UUID().uuidString
        try StateDirectory.ensure(dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/f", contents: Data()))
        StateDirectory.handToServiceUser([dir + "/f"], in: dir)
        var st = stat()
        XCTAssertEqual(stat(dir + "/f", &st), 0)
        XCTAssertEqual(st.st_uid, 0)
    }

    // MARK: - the store's own files

    /// A root-owned file outside the state directory, and the state directory beside it.
    private func victimAndDirectory() throws -> (base: String, dir: String, victim: String) {
        let base = NSTemporaryDirectory() + "state-store-" + UUID().uuidString
        let dir = base + "/state"
        try StateDirectory.ensure(dir)
        let victim = base + "/victim"
        XCTAssertTrue(FileManager.default.createFile(atPath: victim, contents: Data("root:x:0:0\n".utf8), attributes: [.posixPermissions: 0o644]))
        return (base, dir, victim)
    }

    private func assertUntouched(_ victim: String, file: StaticString = #filePath, line: UInt = #line) {
        var st = stat()
        XCTAssertEqual(stat(victim, &st), 0, file: file, line: line)
        XCTAssertEqual(st.st_mode & 0o7777, 0o644, "the link's target keeps its mode", file: file, line: line)
        XCTAssertEqual(st.st_uid, geteuid(), file: file, line: line)
        XCTAssertEqual(FileManager.default.contents(atPath: victim), Data("root:x:0:0\n".utf8), file: file, line: line)
    }

    func testTheStoreRefusesASymlinkInPlaceOfItsDatabaseAndLeavesTheTargetAlone() throws {
        let (base, dir, victim) = try victimAndDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        XCTAssertEqual(symlink(victim, dir + "/mcp-fcgi.db"), 0)
        XCTAssertThrowsError(try SQLiteStore(path: dir + "/mcp-fcgi.db")) { error in
            XCTAssertEqual(String(describing: error), "cannot open the store: \(dir)/mcp-fcgi.db is a symbolic link: refusing to follow it")
        }
        assertUntouched(victim)
    }

    func testTheStoreRefusesLinkedOrForeignCompanionFiles() throws {
        let (base, dir, victim) = try victimAndDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let path = dir + "/mcp-fcgi.db"
        XCTAssertEqual(symlink(victim, path + "-wal"), 0)
        XCTAssertThrowsError(try SQLiteStore(path: path)) { error in
            XCTAssertEqual(String(describing: error), "cannot open the store: \(path)-wal is a symbolic link: refusing to follow it")
        }
        unlink(path + "-wal")
        // A hard link is the same file under a second name: writing the -shm would write the victim.
        XCTAssertEqual(link(victim, path + "-shm"), 0)
        XCTAssertThrowsError(try SQLiteStore(path: path)) { error in
            XCTAssertEqual(String(describing: error), "cannot open the store: \(path)-shm has 2 hard links: refusing a file with another name elsewhere")
        }
        unlink(path + "-shm")
        assertUntouched(victim)
        // Intact, the store opens; its file is owner-only.
        _ = try SQLiteStore(path: path)
        var st = stat()
        XCTAssertEqual(lstat(path, &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o600)
    }

    func testTheStoreRefusesADatabaseFileOfAnotherUser() throws {
        try XCTSkipUnless(geteuid() == 0, "only root can give a file away")
        let (base, dir, _) = try victimAndDirectory()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let path = dir + "/mcp-fcgi.db"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data()))
        XCTAssertEqual(chown(path, 65534, 65534), 0)
        XCTAssertThrowsError(try SQLiteStore(path: path)) { error in
            XCTAssertEqual(String(describing: error), "cannot open the store: \(path) belongs to uid 65534, neither this user (0) nor the directory's owner (0)")
        }
    }
}
