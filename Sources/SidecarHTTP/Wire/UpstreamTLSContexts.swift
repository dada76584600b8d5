import NIOSSL

/// The two client TLS contexts made from one TLS configuration: one that offers HTTP/2 in the
/// handshake (ALPN `h2`, then `http/1.1`) and one as configured (no ALPN unless the
/// configuration names protocols: HTTP/1.1 as before). Made once; a context is costly to build
/// and cheap to share.
package struct UpstreamTLSContexts: Sendable {
    package let http1: NIOSSLContext
    package let http2: NIOSSLContext

    package init(configuration: TLSConfiguration) throws {
        let http1 = configuration
        var http2 = configuration
        http2.applicationProtocols = ["h2", "http/1.1"]
        self.http1 = try NIOSSLContext(configuration: http1)
        self.http2 = try NIOSSLContext(configuration: http2)
    }

    package func context(offeringHTTP2: Bool) -> NIOSSLContext {
        offeringHTTP2 ? self.http2 : self.http1
    }
}
