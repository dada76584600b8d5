import NIOSSL

/// The certificate authorities one upstream's TLS server must chain to, in place of the system's
/// roots (`ca_file` in the configuration), with the TLS context made from them once.
///
/// Verification stays full: the chain must lead to one of these certificates, and the
/// certificate must name the host of the upstream's URL (DNS name, or IP address for an IP
/// literal). An ``UpstreamEndpoint`` carries its trust, so connections verified against other
/// certificates are never shared with it; two trusts with the same certificates are equal (a
/// configuration reloaded with the same bundle keeps its connections).
///
/// ```swift
/// var endpoint = UpstreamEndpoint(host: "llm.internal", port: 443, useTLS: true)
/// endpoint.trust = try UpstreamTrust(pem: bundleBytes, source: "/etc/llm-sidecar/internal-ca.pem")
/// ```
package final class UpstreamTrust: Sendable, Hashable, CustomStringConvertible {
    /// Why a bundle cannot be used.
    package struct LoadError: Error, Sendable, CustomStringConvertible {
        package var description: String
    }

    /// Where the certificates came from (a file path), for messages.
    package let source: String
    /// The client TLS contexts trusting exactly these certificates; made once.
    package let contexts: UpstreamTLSContexts
    private let certificates: [NIOSSLCertificate]
    private let storedHash: Int

    /// Trusts the certificates of a PEM bundle (one or more `BEGIN CERTIFICATE` blocks).
    package convenience init(pem: [UInt8], source: String) throws(LoadError) {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(pem)
        } catch {
            throw LoadError(description: "not a PEM certificate bundle (\(error))")
        }
        guard !certificates.isEmpty else {
            throw LoadError(description: "holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        }
        try self.init(certificates: certificates, source: source)
    }

    package init(certificates: [NIOSSLCertificate], source: String) throws(LoadError) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .fullVerification
        configuration.trustRoots = .certificates(certificates)
        do {
            self.contexts = try UpstreamTLSContexts(configuration: configuration)
        } catch {
            throw LoadError(description: "cannot make a TLS context from these certificates (\(error))")
        }
        self.source = source
        self.certificates = certificates
        self.storedHash = certificates.hashValue
    }

    package static func == (lhs: UpstreamTrust, rhs: UpstreamTrust) -> Bool {
        lhs === rhs || (lhs.storedHash == rhs.storedHash && lhs.certificates == rhs.certificates)
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(self.storedHash)
    }

    package var description: String { "certificates of \(self.source)" }
}
