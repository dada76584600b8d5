import NIOCore
import NIOPosix
import Testing

@testable import SidecarCore
@testable import SidecarHTTP

private let chatReply = #"{"id":"chatcmpl-1","choices":[{"message":{"content":"hi"}}]}"#

/// `warm_connections`: idle connections opened before any request, refilled as requests take
/// them, kept past the idle timeout, and never hammered at an upstream that is down.
@Suite("Warm upstream connections", .serialized)
struct WarmConnectionTests {
    static func endpoint(_ port: Int) throws -> UpstreamEndpoint {
        try #require(UpstreamEndpoint.parse("http://127.0.0.1:\(port)/v1")).endpoint
    }

    /// The idle connections to `endpoint` reach `count` within 3 s.
    static func idle(_ harness: WireHarness, _ endpoint: UpstreamEndpoint, reach count: Int) async throws -> Bool {
        try await eventually(within: .seconds(3)) {
            (try? await harness.onLoop { $0.idleConnectionCount(for: endpoint) }) == count
        }
    }

    /// The server accepts `count` connections within 3 s (it counts one when its own loop gets
    /// to it, after the client's connect has completed).
    static func accepted(_ server: WireTestServer, reach count: Int) async throws -> Bool {
        try await eventually(within: .seconds(3)) { server.stats.withLock { $0.accepted } == count }
    }

    @Test func warmConnectionsOpenBeforeAnyRequestAndAreRefilled() async throws {
        let server = try await WireTestServer.start { _ in [.send(WireTestServer.ok(chatReply))] }
        let harness = WireHarness()
        let endpoint = try Self.endpoint(server.port)
        try await harness.onLoop { $0.configureEndpoints([(endpoint, .init(warmConnections: 2))]) }
        #expect(try await Self.idle(harness, endpoint, reach: 2))
        #expect(try await Self.accepted(server, reach: 2))
        #expect(server.requests.isEmpty)

        // A request takes a warm connection (none opens before it), and one more opens behind it.
        let outcome = try await harness.run(WireHarness.request("http://127.0.0.1:\(server.port)/v1"))
        #expect(outcome.status == 200)
        #expect(server.requests.count == 1)
        #expect((server.requests.first?.connectionIndex ?? 9) < 2)
        #expect(try await Self.idle(harness, endpoint, reach: 3))
        #expect(try await Self.accepted(server, reach: 3))

        // Warm no more: the extra ones go when idle, as usual.
        try await harness.onLoop { $0.configureEndpoints([]) }
        #expect(try await harness.onLoop { $0.idleConnectionCount(for: endpoint) } == 3)
        await harness.close()
        await server.stop()
    }

    @Test func warmConnectionsOutliveTheIdleTimeoutAndComeBackWhenClosed() async throws {
        let server = try await WireTestServer.start { _ in [.send(WireTestServer.ok(chatReply)), .close] }
        let harness = WireHarness(
            .init(connectTimeout: .seconds(2), idleTimeout: .seconds(5), idleConnectionTimeout: .milliseconds(100))
        )
        let endpoint = try Self.endpoint(server.port)
        try await harness.onLoop { $0.configureEndpoints([(endpoint, .init(warmConnections: 1))]) }
        #expect(try await Self.idle(harness, endpoint, reach: 1))
        try await sleep(ms: 300)  // three idle timeouts
        #expect(try await harness.onLoop { $0.idleConnectionCount(for: endpoint) } == 1)
        #expect(try await Self.accepted(server, reach: 1))

        // The server closes the connection after its answer: a new warm one replaces it.
        let outcome = try await harness.run(WireHarness.request("http://127.0.0.1:\(server.port)/v1"))
        #expect(outcome.status == 200)
        #expect(try await Self.idle(harness, endpoint, reach: 1))
        #expect(try await Self.accepted(server, reach: 2))
        await harness.close()
        await server.stop()
    }

    @Test func aDownUpstreamIsNotHammered() async throws {
        // A port nothing listens on: each warm connection is refused at once.
        let port = try closedPort()
        let harness = WireHarness()
        let endpoint = try Self.endpoint(port)
        try await harness.onLoop { $0.configureEndpoints([(endpoint, .init(warmConnections: 4))]) }
        try await sleep(ms: 1500)
        // Four at first; after the 1 s back-off, four more at most.
        let started = try await harness.onLoop { $0.endpointStateForTests(endpoint).warmConnectsStarted }
        #expect((4...8).contains(started), "\(started)")
        #expect(try await harness.onLoop { $0.idleConnectionCount(for: endpoint) } == 0)
        await harness.close()
    }
}
