import COpenSSL

/// An X.509 certificate, kept as its DER encoding.
package struct Certificate: Sendable {
    package let der: [UInt8]

    /// The first certificate in `pem`; `rejected` when there is none.
    package init(pem: [UInt8]) throws(CryptoError) {
        let der: [UInt8]? = readingMemoryBIO(pem) { bio in
            guard let x509 = PEM_read_bio_X509(bio, nil, nil, nil) else { return nil }
            defer { X509_free(x509) }
            var out: UnsafeMutablePointer<UInt8>?
            let n = i2d_X509(x509, &out)
            guard n > 0, let out else { return nil }
            defer { CRYPTO_free(out, #file, #line) }
            return Array(UnsafeBufferPointer(start: out, count: Int(n)))
        }
        guard let der else { ERR_clear_error(); throw CryptoError(.rejected, "no PEM certificate") }
        self.der = der
    }

    /// SHA-256 of the DER certificate (the `x5t#S256` of RFC 7515 4.1.8, before base64url).
    package var sha256Thumbprint: SHA256Digest { SHA256Digest(der) }
}
