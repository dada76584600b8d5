import NIOCore
import NIOHTTP1
import NIOSSL
import Testing

@testable import SidecarHTTP

/// HTTP/2 to upstreams that choose it in the TLS handshake: calls share a connection as
/// streams, with the same answers, failures, idle timeout and cancellation as on HTTP/1.1, and
/// HTTP/1.1 where the upstream (or the configuration) does not take HTTP/2.
@Suite("UpstreamConnectionPool HTTP/2", .serialized)
struct WireHTTP2Tests {
    struct Fixture {
        let certificate: TestCertificateFiles
        let server: WireHTTP2TestServer
        let harness: WireHarness

        init(
            protocols: [String] = ["h2"],
            maxConcurrentStreams: Int = 100,
            idleTimeout: TimeAmount = .seconds(5),
            maxConnections: Int = 256,
            behaviour: @escaping WireHTTP2TestServer.Behaviour = WireHTTP2TestServer.ok
        ) async throws {
            self.certificate = try TestCertificateFiles(subjectAltName: "DNS:localhost,IP:127.0.0.1")
            self.server = try await WireHTTP2TestServer.start(
                certificate: self.certificate,
                protocols: protocols,
                maxConcurrentStreams: maxConcurrentStreams,
                behaviour: behaviour
            )
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(self.certificate.certificatePath))
            self.harness = WireHarness(
                .init(
                    connectTimeout: .seconds(2),
                    idleTimeout: idleTimeout,
                    maxConnectionsPerEndpoint: maxConnections,
                    tlsConfiguration: tls
                )
            )
        }

        var base: String { "https://localhost:\(self.server.port)/v1" }

        func request(_ uri: String) -> UpstreamWireRequest {
            WireHarness.request(self.base, uri: uri)
        }

        /// Starts every call at once (in one turn of the client's loop), then waits for all.
        func burst(_ uris: [String]) async throws -> [WireOutcome] {
            let started = try await self.harness.startAll(uris.map { self.request($0) })
            var outcomes: [WireOutcome] = []
            for call in started {
                outcomes.append(try await call.outcome.get())
            }
            return outcomes
        }

        func close() async {
            await self.harness.close()
            await self.server.stop()
            self.certificate.remove()
        }
    }

    @Test func aBurstOfCallsSharesOneConnection() async throws {
        let fixture = try await Fixture()
        let uris = (0..<50).map { "/v1/chat/completions?n=\($0)" }
        let outcomes = try await fixture.burst(uris)
        #expect(outcomes.map(\.status) == Array(repeating: 200, count: 50))
        #expect(outcomes.map(\.body) == uris.map { "ok:\($0)" })
        let stats = fixture.server.snapshot
        #expect(stats.connections == 1)
        #expect(stats.http2Streams == 50)
        #expect(stats.http1Requests == 0)
        #expect(stats.requests.allSatisfy { $0.authority == "localhost:\(fixture.server.port)" })
        #expect(stats.requests.allSatisfy { $0.body == #"{"model":"m"}"# })
        await fixture.close()
    }

    @Test func anUpstreamWithoutHTTP2GetsHTTP1() async throws {
        let fixture = try await Fixture(protocols: ["http/1.1"])
        for n in 0..<3 {
            let outcome = try await fixture.harness.run(fixture.request("/v1/models?n=\(n)"))
            #expect(outcome.error == nil)
            #expect(outcome.body == "ok:/v1/models?n=\(n)")
        }
        let stats = fixture.server.snapshot
        #expect(stats.http1Requests == 3)
        #expect(stats.http2Streams == 0)
        #expect(stats.connections == 1)
        await fixture.close()
    }

    /// The first burst waits for one handshake in case it chooses HTTP/2; when it does not, the
    /// calls that waited open connections of their own at once (they are not served one by one
    /// on the first connection).
    @Test func aFirstBurstAtAnHTTP1UpstreamOpensConnectionsOnceTheHandshakeChose() async throws {
        let fixture = try await Fixture(protocols: ["http/1.1"]) { request in
            [.head(.ok), .delay(.milliseconds(300)), .body("ok:\(request.uri)"), .end]
        }
        let uris = (0..<6).map { "/n\($0)" }
        let outcomes = try await fixture.burst(uris)
        #expect(outcomes.map(\.body) == uris.map { "ok:\($0)" })
        #expect(fixture.server.snapshot.connections == 6)
        #expect(fixture.server.snapshot.http1Requests == 6)
        await fixture.close()
    }

    /// Warm connections to a TLS upstream that turns HTTP/2 down: one opens first (it might have
    /// chosen HTTP/2, and then one would be enough), the rest once its handshake chose HTTP/1.1.
    @Test func warmConnectionsToAnHTTP1UpstreamAllOpen() async throws {
        let fixture = try await Fixture(protocols: ["http/1.1"])
        let endpoint = fixture.request("/").endpoint
        try await fixture.harness.onLoop { $0.configureEndpoints([(endpoint, .init(warmConnections: 3))]) }
        #expect(
            try await eventually(within: .seconds(3)) {
                (try? await fixture.harness.onLoop { $0.idleConnectionCount(for: endpoint) }) == 3
            }
        )
        #expect(fixture.server.snapshot.connections == 3)
        #expect(fixture.server.snapshot.requests.isEmpty)
        await fixture.close()
    }

    @Test func http2OffInTheSettingsSpeaksHTTP1() async throws {
        let fixture = try await Fixture(protocols: ["h2", "http/1.1"])
        let endpoint = fixture.request("/").endpoint
        try await fixture.harness.onLoop { $0.configureEndpoints([(endpoint, .init(http2: false))]) }
        let outcomes = try await fixture.burst(["/a", "/b"])
        #expect(outcomes.map(\.body) == ["ok:/a", "ok:/b"])
        #expect(fixture.server.snapshot.http1Requests == 2)
        #expect(fixture.server.snapshot.http2Streams == 0)
        await fixture.close()
    }

    @Test func streamsBeyondTheUpstreamsLimitWaitForAFreeOne() async throws {
        let fixture = try await Fixture(maxConcurrentStreams: 2, maxConnections: 1) { request in
            [.head(.ok), .delay(.milliseconds(30)), .body("ok:\(request.uri)"), .end]
        }
        // The first call learns the limit with the connection's SETTINGS.
        _ = try await fixture.harness.run(fixture.request("/first"))
        let uris = (0..<10).map { "/n\($0)" }
        let outcomes = try await fixture.burst(uris)
        #expect(outcomes.map(\.body) == uris.map { "ok:\($0)" })
        let stats = fixture.server.snapshot
        #expect(stats.connections == 1)
        #expect(stats.mostOpenStreams <= 2)
        await fixture.close()
    }

    @Test func aStreamedAnswerArrivesWholeAndInOrder() async throws {
        let parts = (0..<5).map { "data: {\"n\":\($0)}\n\n" }
        let fixture = try await Fixture { _ in
            [.head(.ok)] + parts.flatMap { [WireHTTP2TestServer.Step.body($0), .delay(.milliseconds(5))] } + [.end]
        }
        let outcome = try await fixture.harness.run(fixture.request("/v1/chat/completions"))
        #expect(outcome.error == nil)
        #expect(outcome.body == parts.joined())
        #expect(outcome.events == ["head", "body", "finish"])
        await fixture.close()
    }

    /// Bodies far past the flow-control windows (64 KiB) go through whole, both ways.
    @Test func largeBodiesCrossTheFlowControlWindows() async throws {
        let answer = String(repeating: "0123456789abcdef", count: 1 << 17)  // 2 MiB
        let fixture = try await Fixture { request in
            [.head(.ok), .body("received \(request.body.utf8.count) bytes;"), .body(answer), .end]
        }
        let prompt = String(repeating: "x", count: 1 << 20)
        let request = WireHarness.request(fixture.base, body: prompt)
        let outcome = try await fixture.harness.run(request)
        #expect(outcome.error == nil)
        #expect(outcome.body == "received \(1 << 20) bytes;" + answer)
        await fixture.close()
    }

    @Test func aResetStreamFailsOnlyItsOwnCall() async throws {
        let fixture = try await Fixture { request in
            request.uri == "/reset"
                ? [.head(.ok), .body("partial"), .delay(.milliseconds(20)), .resetStream]
                : [.head(.ok), .delay(.milliseconds(200)), .body("ok:\(request.uri)"), .end]
        }
        let outcomes = try await fixture.burst(["/slow", "/reset"])
        #expect(outcomes[0].body == "ok:/slow")
        #expect(outcomes[0].error == nil)
        #expect(outcomes[1].error?.code == .connectionClosed)
        #expect(outcomes[1].events == ["head", "body", "fail"])
        #expect(fixture.server.snapshot.connections == 1)
        await fixture.close()
    }

    @Test func aDroppedConnectionFailsItsCallsAndTheNextCallReconnects() async throws {
        let fixture = try await Fixture { request in
            request.uri == "/drop"
                ? [.head(.ok), .body("partial"), .delay(.milliseconds(20)), .closeConnection]
                : [.head(.ok), .body("ok:\(request.uri)"), .end]
        }
        let dropped = try await fixture.harness.run(fixture.request("/drop"))
        #expect(dropped.error?.code == .connectionClosed)
        #expect(dropped.body == "partial")
        let next = try await fixture.harness.run(fixture.request("/next"))
        #expect(next.error == nil)
        #expect(next.body == "ok:/next")
        #expect(fixture.server.snapshot.connections == 2)
        await fixture.close()
    }

    /// An upstream that rotates its connections (GOAWAY, as nginx does after 1,000 requests): the
    /// streams it had taken are answered, and later calls go to a new connection.
    @Test func afterGoAwayCallsMoveToANewConnection() async throws {
        let fixture = try await Fixture { request in
            request.uri == "/last"
                ? [.head(.ok), .goAway, .delay(.milliseconds(50)), .body("ok:/last"), .end]
                : [.head(.ok), .body("ok:\(request.uri)"), .end]
        }
        let first = try await fixture.harness.run(fixture.request("/first"))
        #expect(first.body == "ok:/first")
        let last = try await fixture.harness.run(fixture.request("/last"))
        #expect(last.error == nil)
        #expect(last.body == "ok:/last")
        let uris = (0..<5).map { "/after\($0)" }
        let outcomes = try await fixture.burst(uris)
        #expect(outcomes.map(\.body) == uris.map { "ok:\($0)" })
        #expect(fixture.server.snapshot.connections == 2)
        #expect(fixture.server.snapshot.http2Streams == 7)
        await fixture.close()
    }

    @Test func aCancelledCallLeavesTheConnectionToTheOthers() async throws {
        let fixture = try await Fixture { request in
            request.uri == "/hang" ? [.head(.ok), .delay(.seconds(30)), .end] : [.head(.ok), .body("ok"), .end]
        }
        let hanging = try await fixture.harness.start(fixture.request("/hang"))
        try await sleep(ms: 100)
        try await fixture.harness.loop.submit { hanging.recorder.value.call?.cancel() }.get()
        let events = try await fixture.harness.snapshot(hanging).events
        try await fixture.harness.finishRecorder(hanging)
        #expect(events == ["head"])  // nothing after the cancel
        let next = try await fixture.harness.run(fixture.request("/next"))
        #expect(next.body == "ok")
        #expect(try await eventually(within: .seconds(3)) { fixture.server.snapshot.openStreams == 0 })
        #expect(fixture.server.snapshot.connections == 1)
        await fixture.close()
    }

    @Test func aSilentStreamTimesOutAlone() async throws {
        let fixture = try await Fixture(idleTimeout: .milliseconds(300)) { request in
            request.uri == "/silent"
                ? [.head(.ok), .delay(.seconds(5)), .end]
                : [.head(.ok), .body("ok:\(request.uri)"), .end]
        }
        let outcomes = try await fixture.burst(["/silent", "/fine"])
        #expect(outcomes[0].error?.code == .deadlineExceeded)
        #expect(outcomes[1].body == "ok:/fine")
        #expect(fixture.server.snapshot.connections == 1)
        await fixture.close()
    }

    @Test func aWarmHTTP2ConnectionTakesTheWholeBurst() async throws {
        let fixture = try await Fixture()
        let endpoint = fixture.request("/").endpoint
        try await fixture.harness.onLoop { $0.configureEndpoints([(endpoint, .init(warmConnections: 1))]) }
        #expect(
            try await eventually(within: .seconds(3)) {
                (try? await fixture.harness.onLoop { $0.endpointStateForTests(endpoint).multiplexed.count }) == 1
            }
        )
        let outcomes = try await fixture.burst((0..<40).map { "/n\($0)" })
        #expect(outcomes.allSatisfy { $0.status == 200 })
        #expect(fixture.server.snapshot.connections == 1)
        #expect(fixture.server.snapshot.http2Streams == 40)
        await fixture.close()
    }
}
