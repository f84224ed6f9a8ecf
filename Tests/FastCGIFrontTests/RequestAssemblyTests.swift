import GatewaySupport
import XCTest
@testable import FastCGIFront

final class RequestAssemblyTests: XCTestCase {
    func params(_ pairs: [(String, String)]) -> CGIParams {
        var p = CGIParams()
        for (k, v) in pairs { p.add(name: k, value: v) }
        return p
    }

    func testHeadersPathAndBody() throws {
        let a = RequestAssembler(maxBodyBytes: 100)
        let body = Array("hello".utf8)
        let r = a.assemble(params([("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/mcp?x=1"), ("CONTENT_LENGTH", "5"),
                                           ("CONTENT_TYPE", "application/json"), ("HTTP_MCP_PROTOCOL_VERSION", "2026-07-28"),
                                           ("HTTP_AUTHORIZATION", "Bearer t"), ("HTTP_CONTENT_LENGTH", "999"),
                                           ("HTTP_X_CUSTOM_Header", "v")]),
                           readBody: { n in Array(body.prefix(n)) })
        guard case .success(let req) = r else { return XCTFail("\(r)") }
        XCTAssertEqual(req.path, "/mcp")
        XCTAssertEqual(req.headers["MCP-Protocol-Version"], "2026-07-28")
        XCTAssertEqual(req.headers["authorization"], "Bearer t")
        XCTAssertEqual(req.headers["content-type"], "application/json")
        XCTAssertEqual(req.body, body)
        XCTAssertEqual(req.headers["x-custom-header"], "v")
        XCTAssertNil(req.headers["content-length"])
    }

    /// Found by the fastcgi fuzz target (Fuzz/corpus/fastcgi/crash-3e1477b3…): header names are
    /// lower-cased from the param name, so the CONTENT_* guard must hold whatever the param's case.
    func testContentHeadersCannotBeSmuggledInAnyCase() {
        let a = RequestAssembler(maxBodyBytes: 100)
        let r = a.assemble(params([("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/mcp"), ("CONTENT_LENGTH", "2"),
                                   ("HTTP_CoNTENT_LENGTH", "9"), ("HTTP_content_type", "text/html")]),
                           readBody: { n in Array(Array("{}".utf8).prefix(n)) })
        guard case .success(let req) = r else { return XCTFail("\(r)") }
        XCTAssertNil(req.headers["content-length"])
        XCTAssertNil(req.headers["content-type"])
        XCTAssertEqual(req.body, Array("{}".utf8))
    }

    func testAHeaderSentTwiceIsJoinedNotReplaced() {
        let p = params([("HTTP_X_AUTHENTICATED_ROLES", "MCP.Admin"), ("HTTP_X_AUTHENTICATED_ROLES", "MCP.User"),
                        ("HTTP_COOKIE", "a=1"), ("HTTP_COOKIE", "b=2"), ("HTTP_ACCEPT", "application/json")])
        XCTAssertEqual(p.headers["x-authenticated-roles"], "MCP.Admin, MCP.User")
        XCTAssertEqual(p.headers["cookie"], "a=1; b=2")
        XCTAssertEqual(p.headers["accept"], "application/json")
    }

    func testOversizedBodyIs413AndShortBodyIs400() {
        let a = RequestAssembler(maxBodyBytes: 10)
        var r = a.assemble(params([("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", "11")]), readBody: { _ in XCTFail("read"); return [] })
        if case .failure(.reject(let resp)) = r { XCTAssertEqual(resp.status, 413) } else { XCTFail() }
        r = a.assemble(params([("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", "8")]), readBody: { _ in [1, 2, 3] })
        if case .failure(.reject(let resp)) = r { XCTAssertEqual(resp.status, 400) } else { XCTFail() }
        r = a.assemble(params([("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", "-1")]), readBody: { _ in [] })
        if case .failure(.reject(let resp)) = r { XCTAssertEqual(resp.status, 400) } else { XCTFail() }
        r = a.assemble(params([("REQUEST_METHOD", "POST")]), readBody: { n in [UInt8](repeating: 1, count: n) })
        if case .failure(.reject(let resp)) = r { XCTAssertEqual(resp.status, 413) } else { XCTFail() }
    }

    func testOversizedBodyIsWordedByTheHandlerForItsPath() {
        let a = RequestAssembler(maxBodyBytes: 4) { path, detail in HTTPResponse(status: 413, body: Array("\(path)|\(detail)".utf8)) }
        let r = a.assemble(params([("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/mcp?x=1"), ("CONTENT_LENGTH", "5")]),
                           readBody: { _ in XCTFail("read"); return [] })
        guard case .failure(.reject(let resp)) = r else { return XCTFail("\(r)") }
        XCTAssertEqual(String(decoding: resp.body, as: UTF8.self), "/mcp|request body of 5 bytes exceeds the limit of 4 bytes")
    }

    /// A client that sends the absolute form (`POST http://host/mcp HTTP/1.1`, which every
    /// server must accept) reaches Apache's REQUEST_URI as the whole URI: route on its path.
    func testAbsoluteFormRequestURIRoutesOnItsPath() {
        let a = RequestAssembler(maxBodyBytes: 10)
        for (uri, path) in [("http://mcp.example.test/mcp", "/mcp"), ("HTTPS://mcp.example.test:8443/client-a/mcp?x=1", "/client-a/mcp"),
                            ("http://mcp.example.test", "/"), ("http://mcp.example.test?x=1", "/"), ("/mcp", "/mcp"),
                            ("/http://x/mcp", "/http://x/mcp"), ("mcp", "mcp")] {
            guard case .success(let req) = a.assemble(params([("REQUEST_URI", uri)]), readBody: { _ in [] }) else { XCTFail(uri); continue }
            XCTAssertEqual(req.path, path, uri)
        }
    }

    func testScriptNameAndPathInfoWhenNoRequestURI() {
        let r = RequestAssembler(maxBodyBytes: 10).assemble(params([("SCRIPT_NAME", "/cgi-bin/mcp-fcgi"), ("PATH_INFO", "/x")]), readBody: { _ in [] })
        guard case .success(let req) = r else { return XCTFail() }
        XCTAssertEqual(req.path, "/cgi-bin/mcp-fcgi/x")
    }
}
