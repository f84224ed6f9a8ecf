@testable import EntraAuth
import XCTest

/// The tenant segment an issuer holds where its template has `{tenantid}`.
final class IssuerTemplateTests: XCTestCase {
    let v2 = "https://login.microsoftonline.com/{tenantid}/v2.0"

    func testTheSegmentWhereThePlaceholderStands() {
        XCTAssertEqual(IssuerTenantCheck.tenantSegment(of: "https://login.microsoftonline.com/72f988bf/v2.0", template: v2), "72f988bf")
        XCTAssertEqual(IssuerTenantCheck.tenantSegment(of: "https://sts.windows.net/t1/", template: "https://sts.windows.net/{tenantid}/"), "t1")
        XCTAssertEqual(IssuerTenantCheck.tenantSegment(of: "https://a.example/x", template: "https://a.example/{tenantid}"), "x")
        XCTAssertEqual(IssuerTenantCheck.tenantSegment(of: "tenant-first/rest", template: "{tenantid}/rest"), "tenant-first")
        // Characters of more than one byte before the placeholder do not shift it.
        XCTAssertEqual(IssuerTenantCheck.tenantSegment(of: "https://ë.example/é/v", template: "https://ë.example/{tenantid}/v"), "é")
    }

    func testIssuersThatDoNotFitTheTemplate() {
        XCTAssertNil(IssuerTenantCheck.tenantSegment(of: "https://login.microsoftonline.com/a/b/v2.0", template: v2), "a slash in the segment")
        XCTAssertNil(IssuerTenantCheck.tenantSegment(of: "https://login.microsoftonline.com//v2.0", template: v2), "an empty segment")
        XCTAssertNil(IssuerTenantCheck.tenantSegment(of: "https://evil.example/t/v2.0", template: v2))
        XCTAssertNil(IssuerTenantCheck.tenantSegment(of: "https://login.microsoftonline.com/t/v1.0", template: v2))
        // Without a placeholder the template is the one issuer it accepts.
        XCTAssertEqual(IssuerTenantCheck.tenantSegment(of: "https://fixed.example", template: "https://fixed.example"), "")
        XCTAssertNil(IssuerTenantCheck.tenantSegment(of: "https://other.example", template: "https://fixed.example"))
        XCTAssertNil(IssuerTenantCheck.placeholderRange(in: "{tenantid"))
        XCTAssertNil(IssuerTenantCheck.placeholderRange(in: ""))
        let template = "ab{tenantid}{tenantid}"
        XCTAssertEqual(IssuerTenantCheck.placeholderRange(in: template).map { template.utf8.distance(from: template.startIndex, to: $0.lowerBound) }, 2,
                       "the first one")
    }
}
