@testable import FastCGIFront
import XCTest

/// What `--listen` accepts, and the peers a TCP listener lets in.
final class ListenAddressTests: XCTestCase {
    func reason(_ text: String) -> String? {
        do {
            _ = try ListenAddress(parsing: text)
            return nil
        } catch let e as ListenAddressError {
            return e.reason
        } catch {
            return "\(error)"
        }
    }

    func testAddressesThatNameTheirHost() throws {
        XCTAssertEqual(try ListenAddress(parsing: "127.0.0.1:9000"), .tcp(host: "127.0.0.1", port: 9000))
        XCTAssertEqual(try ListenAddress(parsing: "localhost:9000"), .tcp(host: "localhost", port: 9000))
        XCTAssertEqual(try ListenAddress(parsing: "10.0.0.5:9000"), .tcp(host: "10.0.0.5", port: 9000))
        XCTAssertEqual(try ListenAddress(parsing: "unix:/run/mcp-fcgi/mcp-fcgi.sock"), .unix(path: "/run/mcp-fcgi/mcp-fcgi.sock"))
        XCTAssertEqual(try ListenAddress(parsing: "/run/mcp-fcgi.sock"), .unix(path: "/run/mcp-fcgi.sock"))
    }

    func testEveryInterfaceIsRefused() {
        XCTAssertEqual(reason(":9000"),
                       "name the address the web server connects to, e.g. 127.0.0.1:9000 (without a host libfcgi listens on every interface)")
        XCTAssertEqual(reason("0.0.0.0:9000"), "0.0.0.0 is every interface: name the address the web server connects to, e.g. 127.0.0.1:9000")
        XCTAssertEqual(reason("*:9000"), "* is every interface: name the address the web server connects to, e.g. 127.0.0.1:9000")
        for v6 in ["[::]:9000", "[::1]:9000", ":::9000"] {
            XCTAssertEqual(reason(v6), "libfcgi listens on IPv4 only: use an IPv4 address such as 127.0.0.1 or a unix socket", v6)
        }
        XCTAssertEqual(reason("127.0.0.1:0"), "the port must be a number from 1 to 65535")
        XCTAssertEqual(reason("unix:run.sock"), "a unix socket path must be absolute")
    }

    func testATCPListenerAdmitsLoopbackUnlessTheOperatorNamesTheWebServers() throws {
        let loopback = ListenAddress.tcp(host: "127.0.0.1", port: 9000)
        XCTAssertEqual(try WebServerAddresses.allowList(for: loopback, environment: [:]), "127.0.0.1")
        XCTAssertEqual(try WebServerAddresses.allowList(for: .tcp(host: "localhost", port: 9000), environment: [:]), "127.0.0.1")
        XCTAssertEqual(try WebServerAddresses.allowList(for: .tcp(host: "127.0.0.2", port: 9000), environment: [:]), "127.0.0.1,127.0.0.2")
        XCTAssertEqual(try WebServerAddresses.allowList(for: loopback, environment: ["FCGI_WEB_SERVER_ADDRS": "127.0.0.2"]), "127.0.0.2")
        XCTAssertEqual(try WebServerAddresses.allowList(for: .tcp(host: "10.0.0.5", port: 9000),
                                                        environment: ["FCGI_WEB_SERVER_ADDRS": "10.0.0.7,10.0.0.8"]), "10.0.0.7,10.0.0.8")
        XCTAssertThrowsError(try WebServerAddresses.allowList(for: .tcp(host: "10.0.0.5", port: 9000), environment: [:])) {
            XCTAssertTrue("\($0)".contains("listening on 10.0.0.5 needs FCGI_WEB_SERVER_ADDRS"), "\($0)")
        }
        for bad in ["", "10.0.0.7, 10.0.0.8", "10.0.0.7,", "web.example", "::1"] {
            XCTAssertThrowsError(try WebServerAddresses.allowList(for: loopback, environment: ["FCGI_WEB_SERVER_ADDRS": bad]), bad) {
                XCTAssertTrue("\($0)".contains("must list the web server's IPv4 addresses"), "\($0)")
            }
        }
        // libfcgi filters TCP peers only; sockets handed over or on the file system need no list.
        XCTAssertNil(try WebServerAddresses.allowList(for: .unix(path: "/run/x.sock"), environment: [:]))
        XCTAssertNil(try WebServerAddresses.allowList(for: .inherited, environment: ["FCGI_WEB_SERVER_ADDRS": "bad"]))
    }
}
