import Foundation
public import NIOSSL
import SystemSupport

/// A fresh self-signed certificate for 127.0.0.1 and its key, made by Debian's openssl (in
/// `.ci/install-deps`' test packages), for the tests' TLS servers.
public struct SelfSignedCertificate: Sendable {
    /// PEM files in the directory it was made in.
    public let certificate: String
    public let key: String

    /// Whether openssl is there to make one (tests that need it are enabled by this).
    public static let canBeMade = FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl")

    /// Makes `tls-cert.pem` and `tls-key.pem` in `directory` (an existing directory).
    public init(in directory: String) async throws {
        certificate = directory + "/tls-cert.pem"
        key = directory + "/tls-key.pem"
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-days", "1",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", certificate,
        ]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        // Making an RSA key takes a while, longer on a busy machine: waited for on a thread of its
        // own, not on the cooperative pool the suites share.
        let status = await BlockingThread.run {
            openssl.waitUntilExit()
            return openssl.terminationStatus
        }
        guard status == 0 else { throw OpenSSLFailed(status: status) }
    }

    /// A TLS server context that presents this certificate.
    public func serverContext() throws -> NIOSSLContext {
        try NIOSSLContext(
            configuration: .makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))))
    }

    struct OpenSSLFailed: Error {
        let status: Int32
    }
}
