import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Testing

@testable import SidecarCore
@testable import SidecarHTTP

@Suite("UpstreamEndpoint")
struct UpstreamEndpointTests {
    @Test func parsesURLs() throws {
        let a = try #require(UpstreamEndpoint.parse("https://api.openai.com/v1"))
        #expect(a.endpoint == UpstreamEndpoint(host: "api.openai.com", port: 443, useTLS: true))
        #expect(a.path == "/v1")
        #expect(a.endpoint.hostHeader == "api.openai.com")
        let b = try #require(UpstreamEndpoint.parse("http://127.0.0.1:11434/v1/"))
        #expect(b.endpoint == UpstreamEndpoint(host: "127.0.0.1", port: 11434, useTLS: false))
        #expect(b.path == "/v1")
        #expect(b.endpoint.hostHeader == "127.0.0.1:11434")
        #expect(b.endpoint.isIPLiteral)
        let c = try #require(UpstreamEndpoint.parse("HTTP://Example.COM"))
        #expect(c.endpoint == UpstreamEndpoint(host: "example.com", port: 80, useTLS: false))
        #expect(c.path == "")
        let d = try #require(UpstreamEndpoint.parse("http://[::1]:8080/x/y/?q=1"))
        #expect(d.endpoint == UpstreamEndpoint(host: "::1", port: 8080, useTLS: false))
        #expect(d.path == "/x/y")
        #expect(d.endpoint.hostHeader == "[::1]:8080")
        let e = try #require(UpstreamEndpoint.parse("https://[2001:db8::1]/"))
        #expect(e.endpoint.port == 443 && e.endpoint.hostHeader == "[2001:db8::1]" && e.path == "")
        #expect(UpstreamEndpoint.parse("https://h:443/")?.endpoint.hostHeader == "h")
        #expect(UpstreamEndpoint.parse("http://h:80")?.endpoint.hostHeader == "h")
        #expect(UpstreamEndpoint.parse("http://h:443")?.endpoint.hostHeader == "h:443")
        #expect(!(UpstreamEndpoint.parse("https://api.openai.com")?.endpoint.isIPLiteral ?? true))
        for bad in [
            "ftp://x", "http://", "https:///v1", "http://h:0", "http://h:70000", "http://h:x1", "h:80",
            "http://[::1", "http://[::1]x", "http://a b/", "",
        ] {
            #expect(UpstreamEndpoint.parse(bad) == nil, "\(bad)")
        }
    }
}
