import GatewayCrypto
import MCPGatewayTesting

/// Fixed test material, made once with the openssl command line tool.
enum Fixtures {
    /// One RSA-2048 key for every test: generation takes a noticeable moment.
    static let rsaKey = try! PrivateKey.generateRSA(bits: 2048)
    static let otherRSAKey = try! PrivateKey.generateRSA(bits: 2048)

    /// A P-256 private key (PKCS#8 PEM), its public point and an ES256 signature (r||s) of `es256Message`.
    static let p256PrivateKeyPEM = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgDjsKhGOh2b1fl6HM
        +0wwj0KgpjUNigR7mtu1hDCDMYihRANCAAS2rSOcgkSJmsx+JPlPl6xnD98aUBhG
        8dPo4nWsN8TXTdfmCSrk2jeS/+wqgXD07t7cC2PawZJQCaopRIcquHHX
        -----END PRIVATE KEY-----

        """
    static let p256X = hexBytes("b6ad239c8244899acc7e24f94f97ac670fdf1a501846f1d3e8e275ac37c4d74d")
    static let p256Y = hexBytes("d7e6092ae4da3792ffec2a8170f4eededc0b63dac1925009aa2944872ab871d7")
    static let es256Message = Array("GatewayCrypto ES256 test message".utf8)
    static let es256Signature = hexBytes("643076d5b6cde505533cbfc1e4d9614e04af9a477e51fcd9994257d754cdce5e"
                                    + "fc96458a848447ed17998d6905f175977658761c6c4f28ef9a6d099bfcda2a20")

    /// A self-signed certificate and `openssl x509 -fingerprint -sha256` of it.
    static let certificatePEM = """
        -----BEGIN CERTIFICATE-----
        MIIBkTCCATegAwIBAgIUXGlmEfisvU2Fr2Rqtau0s2YdYqkwCgYIKoZIzj0EAwIw
        HTEbMBkGA1UEAwwSZ2F0ZXdheWNyeXB0by50ZXN0MCAXDTI2MTIwMjAwMTgwMloY
        DzIxMjYxMTA4MDAxODAyWjAdMRswGQYDVQQDDBJnYXRld2F5Y3J5cHRvLnRlc3Qw
        WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARCrqPRA/VUSctvKCg18QqeyH886WUz
        wn4v98QXqr3icHTe6TnxsFNbPGF3HR8mR0mOSdNUgE5lMm15TszmkWFxo1MwUTAd
        BgNVHQ4EFgQUqDkPUmHUYfKwByqVBolh7VP/W+UwHwYDVR0jBBgwFoAUqDkPUmHU
        YfKwByqVBolh7VP/W+UwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBF
        AiEA/WJTtsjEa6Y+eu2e+mzSWgAfcvsx3YVxOmYMYilQbmMCIGa4zWppHxeC3dPN
        paqEJvIUFDU39QWIrCU/USVOQ8rT
        -----END CERTIFICATE-----

        """
    static let certificateSHA256 = "cd2a172dd97d6ace1eb82600523188b4ecd89f77484aa6202f134453dc2d6910"
}
