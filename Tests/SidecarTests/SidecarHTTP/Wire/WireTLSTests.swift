import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Testing

@testable import SidecarCore
@testable import SidecarHTTP

@Suite("UpstreamConnectionPool TLS", .serialized)
struct WireTLSTests {
    @Test func tlsWithSNIAndIPLiteral() async throws {
        let (serverContext, tls) = try WireTestCertificate.serverAndClient()
        let server = try await WireTestServer.start(tls: serverContext) { request in
            [.send(WireTestServer.ok("tls:\(request.head.headers["host"].first ?? "")"))]
        }
        let harness = WireHarness(.init(connectTimeout: .seconds(2), idleTimeout: .seconds(5), tlsConfiguration: tls))
        let port = server.port
        for _ in 0..<3 {
            let byName = try await harness.run(WireHarness.request("https://localhost:\(port)/v1"))
            #expect(byName.error == nil)
            #expect(byName.body == "tls:localhost:\(port)")
        }
        for _ in 0..<3 {
            let byIP = try await harness.run(WireHarness.request("https://127.0.0.1:\(port)/v1"))
            #expect(byIP.error == nil)
            #expect(byIP.body == "tls:127.0.0.1:\(port)")
        }
        #expect(server.accepted == 2)
        await harness.close()

        // Default trust roots do not trust the self-signed certificate: TLS handshake failure.
        let untrusting = WireHarness(.init(connectTimeout: .seconds(2), idleTimeout: .seconds(5)))
        let failed = try await untrusting.run(WireHarness.request("https://localhost:\(port)/v1"))
        let error = try #require(failed.error)
        #expect(error.code == .connectFailed)
        #expect(error.detail.hasPrefix("TLS handshake with localhost:\(port) failed: "))
        await untrusting.close()
        await server.stop()
    }
}
