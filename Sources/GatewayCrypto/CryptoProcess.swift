import COpenSSL

/// Process-wide OpenSSL settings, made before anything else uses the library.
public enum CryptoProcess {
    /// Tells OpenSSL not to free its tables in an `atexit` handler. By default it does, and
    /// the names and methods OpenSSL 3 builds on first use are thousands of small allocations:
    /// freeing them one by one costs a CGI process about a millisecond after its answer is sent,
    /// for memory the kernel takes back at once anyway. It has to come first: OpenSSL registers
    /// its handler once, on whichever initialisation runs first. Idempotent; false only if
    /// OpenSSL could not initialise (the first real use then reports the error).
    @discardableResult
    public static func skipCleanupAtExit() -> Bool {
        OPENSSL_init_crypto(UInt64(OPENSSL_INIT_NO_ATEXIT), nil) == 1
    }
}
