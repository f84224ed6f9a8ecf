import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A fresh private (0700) directory under the system temp dir; the test removes it.
package func makeTempDirectory(prefix: String = "mcp-fcgi-test-") -> String {
    var template = Array((NSTemporaryDirectory() + "/" + prefix + "XXXXXX").utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    return String(cString: p!)
}
