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
