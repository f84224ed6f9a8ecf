/// Test vectors are written in hex: the bytes of an even-length hex string (traps on a bad digit,
/// which is a broken fixture, never input).
package func hexBytes(_ s: String) -> [UInt8] {
    var out = [UInt8]()
    out.reserveCapacity(s.utf8.count / 2)
    var it = s.utf8.makeIterator()
    while let a = it.next(), let b = it.next() {
        out.append(UInt8(String(decoding: [a, b], as: UTF8.self), radix: 16)!)
    }
    return out
}
