import MCPJSON

/// The numbers of an RSA private key, read from unencrypted PEM without OpenSSL's decoders:
/// `PEM_read_bio_PrivateKey` sets up OpenSSL 3's decoder chain for every key type on its first
/// use (about 10 million instructions, more than a whole CGI request), while these few DER
/// fields are all an RSA key is. Two forms: PKCS#8 `PRIVATE KEY` with rsaEncryption (what this
/// project writes) and PKCS#1 `RSA PRIVATE KEY`. Anything else (encrypted, EC, multi-prime, PEM
/// headers, other text around the block) is not read here: the caller falls back to OpenSSL.
struct RSAPrivateKeyNumbers {
    /// Big-endian, without leading zeros.
    let n, e, d, p, q, dp, dq, qinv: [UInt8]

    /// The one PEM block `pem` holds, when it is one of the two forms; nil otherwise.
    static func parse(pem: [UInt8]) -> RSAPrivateKeyNumbers? {
        if let der = pemBody(pem, label: "PRIVATE KEY") { return parsePKCS8(der) }
        if let der = pemBody(pem, label: "RSA PRIVATE KEY") { return parsePKCS1(der) }
        return nil
    }

    /// The base64 between `-----BEGIN label-----` and `-----END label-----` lines, decoded; the
    /// file holds nothing else but line breaks (and no PEM headers such as `Proc-Type`).
    static func pemBody(_ pem: [UInt8], label: String) -> [UInt8]? {
        let begin = Array("-----BEGIN \(label)-----".utf8), end = Array("-----END \(label)-----".utf8)
        var lines = pem.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).map { line -> ArraySlice<UInt8> in
            line.last == UInt8(ascii: "\r") ? line.dropLast() : line
        }
        lines.removeAll { $0.isEmpty }
        guard lines.count >= 3, Array(lines[0]) == begin, Array(lines[lines.count - 1]) == end else { return nil }
        let body = lines[1..<(lines.count - 1)].joined()
        return Base64.decodeStandard(Array(body))
    }

    /// PrivateKeyInfo ::= SEQUENCE { version INTEGER (0 or 1), AlgorithmIdentifier, OCTET STRING RSAPrivateKey, ... }
    static func parsePKCS8(_ der: [UInt8]) -> RSAPrivateKeyNumbers? {
        var outer = DERReader(der[...])
        guard var info = outer.read(tag: 0x30), outer.isAtEnd,
              let version = info.readUnsignedInteger(), version == [] || version == [1],
              var algorithm = info.read(tag: 0x30),
              let oid = algorithm.read(tag: 0x06), Array(oid.rest) == rsaEncryption,
              algorithm.isAtEnd || (algorithm.read(tag: 0x05)?.isAtEnd == true && algorithm.isAtEnd),
              let key = info.read(tag: 0x04)
        else { return nil }
        // Attributes ([0]) and a public key ([1], version 1) may follow; they add nothing to the key.
        return parsePKCS1(Array(key.rest))
    }

    /// RSAPrivateKey ::= SEQUENCE { version 0 (two primes), n, e, d, p, q, dp, dq, qinv }
    static func parsePKCS1(_ der: [UInt8]) -> RSAPrivateKeyNumbers? {
        var outer = DERReader(der[...])
        guard var key = outer.read(tag: 0x30), outer.isAtEnd, key.readUnsignedInteger() == [] else { return nil }
        var numbers: [[UInt8]] = []
        for _ in 0..<8 {
            guard let value = key.readUnsignedInteger(), !value.isEmpty else { return nil }
            numbers.append(value)
        }
        guard key.isAtEnd else { return nil }
        return RSAPrivateKeyNumbers(n: numbers[0], e: numbers[1], d: numbers[2], p: numbers[3], q: numbers[4],
                                    dp: numbers[5], dq: numbers[6], qinv: numbers[7])
    }

    /// 1.2.840.113549.1.1.1
    static let rsaEncryption: [UInt8] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]
}

/// Reads DER tag-length-value items from the front of a byte slice: definite lengths only,
/// every length checked against what is left.
struct DERReader {
    private var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }

    var isAtEnd: Bool { bytes.isEmpty }

    /// What is left to read.
    var rest: ArraySlice<UInt8> { bytes }

    /// The contents of the next item if its tag is `tag`; nil (nothing consumed that matters:
    /// the caller gives up) when it is not, or when its length runs past the end.
    mutating func read(tag: UInt8) -> DERReader? {
        guard let first = bytes.first, first == tag else { return nil }
        var rest = bytes.dropFirst()
        guard let lengthByte = rest.popFirst() else { return nil }
        var length = 0
        if lengthByte < 0x80 {
            length = Int(lengthByte)
        } else {
            // Long form: 1 to 3 length bytes (no key here comes near 16 MiB), minimal, not indefinite.
            let count = Int(lengthByte & 0x7F)
            guard (1...3).contains(count), rest.count >= count, rest.first != 0 else { return nil }
            for _ in 0..<count { length = length << 8 | Int(rest.popFirst()!) }
            guard length >= 0x80 else { return nil }
        }
        guard rest.count >= length else { return nil }
        let contents = rest.prefix(length)
        bytes = rest.dropFirst(length)
        return DERReader(contents)
    }

    /// A non-negative INTEGER, big-endian without leading zeros ([] for zero); nil for a
    /// negative or non-minimal one or another tag.
    mutating func readUnsignedInteger() -> [UInt8]? {
        guard let item = read(tag: 0x02), let first = item.bytes.first else { return nil }
        var value = item.bytes
        guard first & 0x80 == 0 else { return nil }
        if first == 0 {
            guard value.count == 1 || value[value.startIndex + 1] & 0x80 != 0 else { return nil }
            value = value.dropFirst()
        }
        return Array(value)
    }
}
