import XCTest
@testable import MCPGateway

final class VersionTests: XCTestCase {
    func testVersionIsSemantic() {
        XCTAssertEqual(GatewayVersion.string.split(separator: ".").count, 3)
    }
}
