import Foundation
import NIOSSL

/// A self-signed certificate and its key as PEM files in a temporary directory (openssl), for
/// `ca_file` and for TLS servers the sidecar connects to.
struct TestCertificateFiles {
    let directory: URL
    var certificatePath: String { self.directory.appendingPathComponent("cert.pem").path }
    var keyPath: String { self.directory.appendingPathComponent("key.pem").path }

    /// `subjectAltName`, e.g. "DNS:localhost,IP:127.0.0.1".
    init(commonName: String = "localhost", subjectAltName: String) throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", self.keyPath, "-out", self.certificatePath, "-days", "1", "-subj", "/CN=\(commonName)",
            "-addext", "subjectAltName=\(subjectAltName)",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw NSError(domain: "openssl", code: Int(process.terminationStatus))
        }
    }

    /// A TLS server context presenting this certificate.
    func serverContext() throws -> NIOSSLContext {
        try NIOSSLContext(
            configuration: .makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(self.certificatePath).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: self.keyPath, format: .pem))
            )
        )
    }

    func remove() {
        try? FileManager.default.removeItem(at: self.directory)
    }
}
