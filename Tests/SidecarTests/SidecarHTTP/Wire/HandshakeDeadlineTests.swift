import NIOCore
import NIOSSL
import Synchronization
import Testing

@testable import SidecarHTTP

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An `https` upstream that takes TCP connections and never answers the TLS handshake: the
/// connect timeout covers the handshake, and the calls waiting behind that connect fail with it.
@Suite("Upstream TLS handshake deadline", .serialized)
struct HandshakeDeadlineTests {
    /// Takes up to 64 TCP connections and never answers what comes next.
    static func silent() throws -> ConnectCapTests.Unaccepting {
        try ConnectCapTests.Unaccepting(backlog: 64)
    }

    /// TCP connections opened.
    final class Opened: Sendable {
        let count = Mutex(0)
    }

    static func harness(opened: Opened = Opened(), connectTimeout: TimeAmount) -> WireHarness {
        WireHarness(
            .init(
                connectTimeout: connectTimeout,
                idleTimeout: .seconds(30),
                events: .init(connectionOpened: { _ in opened.count.withLock { $0 += 1 } })
            )
        )
    }

    /// Waits (bounded) for every call to end; the outcomes, and how far apart the first and
    /// the last ended.
    static func outcomes(
        _ started: [WireStarted],
        within limit: Duration
    ) async throws -> (outcomes: [WireOutcome], spread: Duration) {
        let ended = Mutex<[ContinuousClock.Instant]>([])
        for call in started { call.outcome.whenComplete { _ in ended.withLock { $0.append(.now) } } }
        let all = try await eventually(within: limit) { ended.withLock { $0.count } == started.count }
        try #require(all, "calls still waiting after \(limit)")
        var outcomes: [WireOutcome] = []
        for call in started { outcomes.append(try await call.outcome.get()) }
        let times = ended.withLock { $0 }
        return (outcomes, (times.max() ?? .now) - (times.min() ?? .now))
    }

    @Test func anUnansweredHandshakeTimesOutAsAConnect() async throws {
        let upstream = try Self.silent()
        defer { withExtendedLifetime(upstream) {} }
        let harness = Self.harness(connectTimeout: .milliseconds(300))
        let started = try await harness.start(WireHarness.request("https://127.0.0.1:\(upstream.port)/v1"))
        let outcome = try #require(try await Self.outcomes([started], within: .seconds(10)).outcomes.first)
        let error = try #require(outcome.error)
        #expect(error.code == .connectTimeout, "\(error)")
        #expect(error.detail.contains("TLS handshake"), "\(error)")
        await harness.close()
    }

    /// A burst waits for the first handshake (HTTP/2 offered): when it times out, the whole
    /// burst fails with it at once (before: one handshake timeout after another).
    @Test func aBurstWaitingForAHandshakeFailsWithIt() async throws {
        let upstream = try Self.silent()
        defer { withExtendedLifetime(upstream) {} }
        let opened = Opened()
        let harness = Self.harness(opened: opened, connectTimeout: .seconds(1))
        let base = "https://127.0.0.1:\(upstream.port)/v1"
        let started = try await harness.startAll(Array(repeating: WireHarness.request(base), count: 10))
        let (outcomes, spread) = try await Self.outcomes(started, within: .seconds(20))
        for outcome in outcomes {
            #expect(outcome.error?.code == .connectTimeout, "\(String(describing: outcome.error))")
        }
        #expect(opened.count.withLock { $0 } == 1)
        #expect(spread < .milliseconds(500), "\(spread)")
        let endpoint = try #require(UpstreamEndpoint.parse(base)).endpoint
        #expect(try await harness.onLoop { $0.endpointStateForTests(endpoint).waiters.count } == 0)
        await harness.close()
    }

    /// Calls beyond the connect cap wait for a slot: when the connects in flight time out, the
    /// ones in line fail with them (before: the next two connects, then the next two...).
    @Test func callsWaitingForAConnectSlotFailWithTheConnects() async throws {
        let upstream = try ConnectCapTests.Unaccepting()
        // The listener's queue holds one connection: with it taken, every connect hangs.
        let filler = try connectedLoopbackSocket(to: upstream.port)
        defer { close(filler) }
        let harness = Self.harness(connectTimeout: .seconds(1))
        let base = "http://127.0.0.1:\(upstream.port)/v1"
        let endpoint = try #require(UpstreamEndpoint.parse(base)).endpoint
        try await harness.onLoop { $0.configureEndpoints([(endpoint, .init(maxConnecting: 2))]) }
        let started = try await harness.startAll(Array(repeating: WireHarness.request(base), count: 6))
        let (outcomes, spread) = try await Self.outcomes(started, within: .seconds(20))
        for outcome in outcomes {
            #expect(outcome.error?.code == .connectTimeout, "\(String(describing: outcome.error))")
        }
        #expect(spread < .milliseconds(500), "\(spread)")
        upstream.stop()
        await harness.close()
    }

    /// The deadline ends with the handshake: answers slower than the connect timeout, on a
    /// connection kept alive, are not cut (with HTTP/2 offered and declined, and not offered).
    @Test(arguments: [true, false])
    func aFinishedHandshakeLeavesSlowAnswersAlone(offerHTTP2: Bool) async throws {
        let (serverContext, tls) = try WireTestCertificate.serverAndClient()
        let server = try await WireTestServer.start(tls: serverContext) { _ in
            [.delay(.milliseconds(700)), .send(WireTestServer.ok("slow"))]
        }
        let harness = WireHarness(
            .init(connectTimeout: .milliseconds(300), idleTimeout: .seconds(5), tlsConfiguration: tls)
        )
        let base = "https://localhost:\(server.port)/v1"
        let endpoint = try #require(UpstreamEndpoint.parse(base)).endpoint
        try await harness.onLoop { $0.configureEndpoints([(endpoint, .init(http2: offerHTTP2))]) }
        for _ in 0..<2 {
            let outcome = try await harness.run(WireHarness.request(base))
            #expect(outcome.error == nil, "\(String(describing: outcome.error))")
            #expect(outcome.body == "slow")
        }
        #expect(server.accepted == 1)
        await harness.close()
        await server.stop()
    }
}
