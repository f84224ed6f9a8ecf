import Foundation
import GatewayStore
import XCTest
@testable import MCPGateway

final class MappingTests: XCTestCase {
    let t = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    let other = "0b7e9c39-8f15-4a5e-9a57-2f5c2e1f4d11"
    let user = "11111111-1111-4111-8111-111111111111"
    let group = "22222222-2222-4222-8222-222222222222"
    let w1 = "aaaaaaaa-0000-4000-8000-000000000001", w2 = "aaaaaaaa-0000-4000-8000-000000000002"

    func testUserAndGroupMappingsPerTenant() throws {
        let dir = NSTemporaryDirectory() + "mcp-fcgi-map-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/s.db")
        try store.addMappings([
            try WorkspaceMapping(tenant: t, kind: .user, principal: user.uppercased(), workspace: w1),
            try WorkspaceMapping(tenant: t, kind: .group, principal: group, workspace: w2),
            try WorkspaceMapping(tenant: other, kind: .user, principal: user, workspace: w2),
        ])
        XCTAssertEqual(try store.workspaces(tenant: t, user: user, groups: []), [w1])
        XCTAssertEqual(try store.workspaces(tenant: t, user: user, groups: [group.uppercased()]), [w1, w2])
        XCTAssertEqual(try store.workspaces(tenant: other, user: user, groups: [group]), [w2])
        XCTAssertEqual(try store.mappings(tenant: t).count, 2)
        XCTAssertTrue(try store.removeMapping(try WorkspaceMapping(tenant: t, kind: .group, principal: group, workspace: w2)))
        XCTAssertEqual(try store.workspaces(tenant: t, user: user, groups: [group]), [w1])
        XCTAssertThrowsError(try WorkspaceMapping(tenant: t, kind: .user, principal: "bob", workspace: w1))
    }

    func testCSVReportsEveryBadLineAndImportsNothing() {
        let good = "tenant,kind,principal,workspace\n\(t),user,\(user),\(w1)\r\n# comment\n\n\(t),group,\(group),\(w2)\n"
        guard case .success(let m) = MappingCSV.parse(good) else { return XCTFail() }
        XCTAssertEqual(m.count, 2)
        let bad = "tenant,kind,principal,workspace\n\(t),robot,\(user),\(w1)\n\(t),user,\(user)\n\(t),user,\(user),nope\n"
        guard case .failure(let problems) = MappingCSV.parse(bad) else { return XCTFail() }
        XCTAssertEqual(problems.lines.count, 3)
        XCTAssertTrue(problems.lines[0].hasPrefix("line 2:"))
        XCTAssertTrue(problems.lines[2].contains("workspace 'nope'"))
        guard case .failure = MappingCSV.parse("\(t),user,\(user),\(w1)\n") else { return XCTFail("a missing header must fail") }
    }
}
