import Foundation
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
}
