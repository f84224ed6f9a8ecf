import Foundation
import GatewaySupport
import XCTest

/// The state directory and the secret key files in it.
final class PrivateFilesTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = NSTemporaryDirectory() + "mcp-fcgi-private-" + UUID().uuidString }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func mode(_ path: String) -> Int? { (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int }

    func testStateDirectoryAndItsParentsAreOwnerOnly() throws {
        try StateDirectory.ensure(dir + "/a/b")
        XCTAssertEqual(mode(dir), 0o700)
        XCTAssertEqual(mode(dir + "/a/b"), 0o700)
        try StateDirectory.ensure(dir + "/a/b")
        FileManager.default.createFile(atPath: dir + "/file", contents: Data())
        XCTAssertThrowsError(try StateDirectory.ensure(dir + "/file")) { XCTAssertTrue("\($0)".contains("not a directory"), "\($0)") }
    }

    func testASecretIsCreatedOnceAndNeverOverwritten() throws {
        try StateDirectory.ensure(dir)
        let path = dir + "/key"
        XCTAssertNil(try PrivateFiles.readSecret(path, what: "key", maxBytes: 16))
        try PrivateFiles.createSecretIfAbsent(path) { [1, 2, 3] }
        try PrivateFiles.createSecretIfAbsent(path) { XCTFail("made again"); return [9] }
        XCTAssertEqual(try PrivateFiles.readSecret(path, what: "key", maxBytes: 16), [1, 2, 3])
        XCTAssertEqual(mode(path), 0o600)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["key"], "no temp files left")
        XCTAssertThrowsError(try PrivateFiles.readSecret(path, what: "key", maxBytes: 2))
    }

    func testReadableOrLinkedSecretsAreRefused() throws {
        try StateDirectory.ensure(dir)
        let path = dir + "/key"
        try PrivateFiles.createSecretIfAbsent(path) { [1] }
        chmod(path, 0o640)
        XCTAssertThrowsError(try PrivateFiles.readSecret(path, what: "key", maxBytes: 16)) { XCTAssertTrue("\($0)".contains("chmod 600"), "\($0)") }
        chmod(path, 0o600)
        symlink(path, dir + "/link")
        XCTAssertThrowsError(try PrivateFiles.readSecret(dir + "/link", what: "key", maxBytes: 16))
    }
}
