import NIOCore
import NIOPosix
import Testing

@testable import SidecarHTTP

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private let chatReply = #"{"id":"chatcmpl-1","choices":[{"message":{"content":"hi"}}]}"#

/// `max_connecting`: a burst opens at most that many connections at once per event loop; the
/// rest wait in line and connect as slots free.
@Suite("Upstream connect cap", .serialized)
struct ConnectCapTests {
    /// A loopback listener that never accepts. With a backlog of zero, once its queue holds one
    /// connection the kernel drops further SYNs, so their connects hang until they time out; with
    /// a larger one, the kernel completes that many TCP handshakes and what the client sends next
    /// (a TLS hello) waits unanswered.
    final class Unaccepting {
        private(set) var descriptor: Int32
        let port: Int

        init(backlog: Int32 = 0) throws {
            (self.descriptor, self.port) = try loopbackSocket(listeningWithBacklog: backlog)
        }

        /// Stops listening: the hanging connects are refused at their next SYN, new ones at once.
        func stop() {
            if self.descriptor >= 0 { close(self.descriptor) }
            self.descriptor = -1
        }

        deinit { self.stop() }
    }

    static func endpoint(_ port: Int) throws -> UpstreamEndpoint {
        try #require(UpstreamEndpoint.parse("http://127.0.0.1:\(port)/v1")).endpoint
    }

    /// Starts `count` calls to `port` at once and waits until the pool shows `settled`.
    static func burst(
        _ harness: WireHarness,
        port: Int,
        count: Int,
        settled: @escaping @Sendable (_ connecting: Int, _ waiting: Int) -> Bool
    ) async throws -> (connecting: Int, waiting: Int) {
        let endpoint = try Self.endpoint(port)
        for _ in 0..<count { _ = try await harness.start(WireHarness.request("http://127.0.0.1:\(port)/v1")) }
        var seen = (connecting: -1, waiting: -1)
        _ = try await eventually(within: .seconds(10)) {
            let now = try? await harness.onLoop { pool in
                let state = pool.endpointStateForTests(endpoint)
                return (state.connecting, state.waiters.count)
            }
            guard let now else { return false }
            seen = (now.0, now.1)
            return settled(now.0, now.1)
        }
        return seen
    }

    @Test func aBurstOpensAtMostTheCapAtOnce() async throws {
        let upstream = try Unaccepting()
        let harness = WireHarness(.init(connectTimeout: .seconds(30), idleTimeout: .seconds(30)))
        let endpoint = try Self.endpoint(upstream.port)
        try await harness.onLoop { $0.configureEndpoints([(endpoint, .init(maxConnecting: 2))]) }
        let seen = try await Self.burst(harness, port: upstream.port, count: 6) { connecting, waiting in
            connecting == 2 && waiting >= 3
        }
        #expect(seen.connecting == 2, "\(seen)")
        #expect(seen.waiting >= 3, "\(seen)")
        // Nothing more opens while those hang.
        try await sleep(ms: 300)
        let later = try await harness.onLoop { $0.endpointStateForTests(endpoint).connecting }
        #expect(later == 2)
        upstream.stop()
        await harness.close()
    }

    @Test func withoutACapTheWholeBurstConnectsAtOnce() async throws {
        let upstream = try Unaccepting()
        let harness = WireHarness(.init(connectTimeout: .seconds(30), idleTimeout: .seconds(30)))
        let endpoint = try Self.endpoint(upstream.port)
        try await harness.onLoop { $0.configureEndpoints([(endpoint, .init(maxConnecting: 0))]) }
        let seen = try await Self.burst(harness, port: upstream.port, count: 6) { connecting, waiting in
            connecting >= 5 && waiting == 0
        }
        #expect(seen.connecting >= 5, "\(seen)")
        #expect(seen.waiting == 0, "\(seen)")
        upstream.stop()
        await harness.close()
    }

    /// With a cap of one, a burst is still served in full: each finished connect lets the next
    /// waiting call open one (or a finished call hands its connection on).
    @Test func waitingCallsAreServedAsSlotsFree() async throws {
        let server = try await WireTestServer.start { _ in [.send(WireTestServer.ok(chatReply))] }
        let harness = WireHarness()
        let endpoint = try Self.endpoint(server.port)
        try await harness.onLoop { $0.configureEndpoints([(endpoint, .init(maxConnecting: 1))]) }
        var started: [WireStarted] = []
        for _ in 0..<8 {
            started.append(try await harness.start(WireHarness.request("http://127.0.0.1:\(server.port)/v1")))
        }
        for call in started { #expect(try await call.outcome.get().status == 200) }
        #expect(server.requests.count == 8)
        #expect(server.stats.withLock { $0.accepted } <= 8)
        let state = try await harness.onLoop { pool in
            let state = pool.endpointStateForTests(endpoint)
            return (state.connecting, state.waiters.count)
        }
        #expect(state.0 == 0 && state.1 == 0)
        await harness.close()
        await server.stop()
    }
}
