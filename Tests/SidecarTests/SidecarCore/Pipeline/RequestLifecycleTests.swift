import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Prometheus
import Testing

@testable import SidecarCore
@testable import SidecarHTTP
@testable import SidecarPolicy

/// A request's whole lifecycle, phase by phase, with the upstream and the client in memory:
/// no socket, and time moves only when the embedded event loop is told to.
@Suite struct RequestLifecycleTests {
    final class Fixture {
        let loop = EmbeddedEventLoop()
        let transport = FakeUpstreamTransport()
        let sink = FakeClientSink()
        let registry = PrometheusCollectorRegistry()
        let phases: RequestPhases
        let headTimer: CoalescedDeadlineTimer

        init(_ toml: String = Fixture.toml, cache: (any ResponseCache)? = nil) throws {
            let configuration = try SidecarConfiguration(toml: toml, file: "test.conf")
            self.phases = RequestPhases(
                runtime: SidecarRuntime(configuration: configuration, environment: ["CLOUD_KEY": "sk-cloud"]),
                metrics: SidecarMetrics(factory: PrometheusMetricsFactory(registry: self.registry)),
                logger: Logger(label: "test"),
                cache: cache
            )
            self.headTimer = CoalescedDeadlineTimer(eventLoop: self.loop)
        }

        static let toml = """
            [[upstreams]]
            name = "ollama"
            base_url = "http://127.0.0.1:11434/v1"
            [[upstreams]]
            name = "cloud"
            base_url = "https://cloud.example/openai/v1"
            api_key_env = "CLOUD_KEY"
            [[models]]
            name = "small-local"
            upstream = "ollama"
            fallbacks = ["big-cloud"]
            [[models]]
            name = "big-cloud"
            upstream = "cloud"
            input_usd_per_mtok = 2.50
            output_usd_per_mtok = 10.00
            [[models]]
            name = "embed-cloud"
            upstream = "cloud"
            input_usd_per_mtok = 0.02
            [routing]
            tiers = [ { max_score = 0.40, model = "small-local" }, { max_score = 1.01, model = "big-cloud" } ]
            """

        @discardableResult
        func run(
            _ body: String,
            path: String = "/v1/chat/completions",
            headers: [(String, String)] = []
        )
            -> RequestLifecycle
        {
            let request = ProxyRequest(
                endpoint: ProxyRequest.Endpoint.classify(method: .post, path: path),
                method: .post,
                path: path,
                headers: HTTPHeaders(headers),
                body: ByteBuffer(string: body),
                requestID: "req-1"
            )
            let lifecycle = RequestLifecycle(request, phases: self.phases, sink: self.sink)
            let environment = self.phases.forwardEnvironment(transport: self.transport, eventLoop: self.loop)
            #expect(lifecycle.run(environment: environment, headTimer: self.headTimer))
            return lifecycle
        }

        var metrics: String {
            var buffer: [UInt8] = []
            self.registry.emit(into: &buffer)
            return String(decoding: buffer, as: UTF8.self)
        }
    }

    static let usage = #""usage":{"prompt_tokens":1000,"completion_tokens":100,"total_tokens":1100}"#
    static let answer = #"{"id":"c1","choices":[{"message":{"content":"4"}}],\#(usage)}"#

    @Test func aSimpleChatIsRoutedToTheLocalTierRewrittenAndAnsweredFree() throws {
        let fixture = try Fixture()
        fixture.run(#"{"model":"gpt-4o","messages":[{"role":"user","content":"What is 2+2?"}]}"#)
        let call = try #require(fixture.transport.last)
        #expect(call.request.upstreamName == "ollama")
        #expect(call.request.uri == "/v1/chat/completions")
        #expect(call.body.contains(#""model":"small-local""#))
        #expect(call.request.headers.first(name: "authorization") == nil)
        call.answer(200, Self.answer)
        #expect(fixture.sink.status == .ok)
        #expect(fixture.sink.headers.first(name: "X-Model-Used") == "small-local")
        #expect(fixture.sink.headers.first(name: "X-Sidecar-Route") == "tier")
        #expect(fixture.sink.headers.first(name: "X-Sidecar-Cache") == "miss")
        #expect(fixture.sink.headers.first(name: "X-Query-Cost") == "0")
        #expect(fixture.sink.headers.first(name: "X-Request-Id") == "req-1")
        #expect(fixture.sink.text == Self.answer)
        #expect(
            fixture.metrics.contains(
                #"llm_sidecar_requests_total{endpoint="chat_completions",model="small-local",tier="0",cache="miss",status="200"} 1"#
            )
        )
    }

    @Test func aPinnedCloudModelCarriesTheUpstreamKeyAndIsPricedFromUsage() throws {
        let fixture = try Fixture()
        fixture.run(
            #"{"model":"pin/big-cloud","messages":[{"role":"user","content":"hi"}]}"#,
            headers: [("Authorization", "Bearer client-token")]
        )
        let call = try #require(fixture.transport.last)
        #expect(call.request.uri == "/openai/v1/chat/completions")
        #expect(call.request.headers.first(name: "authorization") == "Bearer sk-cloud")
        call.answer(200, Self.answer)
        // 1000 x $2.50 + 100 x $10 per million tokens.
        #expect(fixture.sink.headers.first(name: "X-Query-Cost") == "0.0035")
        #expect(fixture.sink.headers.first(name: "X-Sidecar-Route") == "pinned")
    }

    @Test func aStreamIsRelayedEventByEventAndItsCostIsATrailer() throws {
        let fixture = try Fixture()
        fixture.run(#"{"model":"pin/big-cloud","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
        let call = try #require(fixture.transport.last)
        #expect(call.body.contains(#""stream_options":{"include_usage":true}"#))
        call.head(200, [("Content-Type", "text/event-stream")])
        #expect(fixture.sink.status == nil)  // held until the first chunk
        call.chunk("data: {\"choices\":[{\"delta\":{\"content\":\"4\"}}]}\n\n")
        #expect(fixture.sink.status == .ok)
        #expect(fixture.sink.headers.first(name: "Trailer") == "X-Query-Cost, X-Sidecar-Cost-Estimated")
        #expect(fixture.sink.writes.count == 1)
        call.chunk("data: {\"choices\":[],\(Self.usage)}\n\ndata: [DONE]\n\n")
        call.end()
        #expect(fixture.sink.ended)
        #expect(!fixture.sink.text.contains("usage"))  // the sidecar asked for it; the client did not
        #expect(fixture.sink.text.hasSuffix("data: [DONE]\n\n"))
        #expect(fixture.sink.trailers?.first(name: "X-Query-Cost") == "0.0035")
    }

    /// A write to a client that is gone closes its connection, and the close cancels the request
    /// from inside the relay's write (found under load: an exclusivity violation on the relay).
    @Test func aClientGoneDuringAWriteEndsTheRequestFromInsideTheRelay() throws {
        let fixture = try Fixture()
        let lifecycle = fixture.run(#"{"model":"pin/big-cloud","stream":true,"messages":[]}"#)
        let call = try #require(fixture.transport.last)
        call.head(200, [("Content-Type", "text/event-stream")])
        fixture.sink.onWrite = { [unowned lifecycle] in lifecycle.cancel() }
        call.chunk("data: {\"choices\":[{\"delta\":{\"content\":\"4\"}}]}\n\n")
        #expect(call.isCancelled)
        #expect(
            fixture.metrics.contains(
                #"llm_sidecar_requests_total{endpoint="chat_completions",model="big-cloud",tier="",cache="miss",status="499"} 1"#
            )
        )
    }

    @Test func backPressureFromTheClientPausesTheUpstream() throws {
        let fixture = try Fixture()
        let lifecycle = fixture.run(#"{"model":"pin/big-cloud","stream":true,"messages":[]}"#)
        let call = try #require(fixture.transport.last)
        call.head(200, [("Content-Type", "text/event-stream")])
        fixture.sink.isWritable = false
        call.chunk("data: {}\n\n")
        #expect(call.isReadingPaused)
        lifecycle.writabilityChanged(true)
        #expect(!call.isReadingPaused)
    }

    @Test func aFailingModelIsRetriedThenItsFallbackAnswers() throws {
        let fixture = try Fixture()
        fixture.run(#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#)
        for attempt in 1...3 {
            let call = try #require(fixture.transport.last)
            #expect(fixture.transport.calls.count == attempt)
            #expect(call.request.upstreamName == "ollama")
            call.answer(503, #"{"error":{"message":"busy"}}"#)
            fixture.loop.advanceTime(by: .seconds(10))  // the backoff
        }
        let fallback = try #require(fixture.transport.last)
        #expect(fallback.request.upstreamName == "cloud")
        #expect(fallback.body.contains(#""model":"big-cloud""#))
        fallback.answer(200, Self.answer)
        #expect(fixture.sink.headers.first(name: "X-Sidecar-Fallback") == "true")
        #expect(fixture.sink.headers.first(name: "X-Model-Used") == "big-cloud")
        #expect(fixture.metrics.contains(#"llm_sidecar_fallbacks_total{from="small-local",to="big-cloud"} 1"#))
        #expect(fixture.metrics.contains(#"llm_sidecar_retries_total{upstream="ollama",reason="status_503"} 2"#))
    }

    @Test func anUpstreamThatNeverAnswersTimesOutAtTheFirstByteDeadline() throws {
        let fixture = try Fixture("[timeouts]\nfirst_byte_ms = 5000\n" + Fixture.toml)
        fixture.run(#"{"model":"pin/small-local","messages":[]}"#)
        let first = try #require(fixture.transport.last)
        fixture.loop.advanceTime(by: .seconds(5))
        #expect(first.isCancelled)
        fixture.loop.advanceTime(by: .seconds(1))  // the backoff
        #expect(fixture.transport.calls.count == 2)
    }

    @Test func badJSONIsA400AndNothingIsForwarded() throws {
        let fixture = try Fixture()
        fixture.run(#"{"model":"auto","messages":[}"#)
        #expect(fixture.transport.calls.isEmpty)
        #expect(fixture.sink.status == .badRequest)
        #expect(fixture.sink.text.contains(#""code":"invalid_json""#))
    }

    @Test func theClientGoingAwayCancelsTheUpstreamCall() throws {
        let fixture = try Fixture()
        let lifecycle = fixture.run(#"{"model":"auto","messages":[]}"#)
        let call = try #require(fixture.transport.last)
        lifecycle.cancel()
        #expect(call.isCancelled)
        #expect(fixture.sink.status == nil)
        #expect(fixture.metrics.contains(#"status="499"} 1"#))
    }

    @Test func passThroughPathsAreForwardedUnchangedToTheDefaultUpstream() throws {
        let fixture = try Fixture()
        fixture.run(#"{"purpose":"batch"}"#, path: "/v1/files")
        let call = try #require(fixture.transport.last)
        #expect(call.request.upstreamName == "ollama")
        #expect(call.body == #"{"purpose":"batch"}"#)
        call.answer(404, #"{"error":{"message":"no files here"}}"#)
        #expect(fixture.sink.status == .notFound)
        #expect(fixture.sink.headers.first(name: "X-Model-Used") == nil)
    }

    @Test func aCacheHitIsAnsweredWithoutForwardingAtNoCost() throws {
        struct OneAnswerCache: ResponseCache {
            func lookup(_ context: RequestContext, on eventLoop: any EventLoop) -> CacheLookup {
                let answer = StoredAnswer(
                    body: .whole(Array(#"{"cached":true}"#.utf8)),
                    model: "big-cloud",
                    upstream: "cloud",
                    cost: "0.01",
                    expiresAt: .max
                )
                return .hit(CachedAnswer(answer: answer, kind: "exact"))
            }
            func store(_ context: RequestContext, answer: @autoclosure () -> StoredAnswer.Body) {}
        }
        let fixture = try Fixture(cache: OneAnswerCache())
        fixture.run(#"{"model":"auto","messages":[]}"#)
        #expect(fixture.transport.calls.isEmpty)
        #expect(fixture.sink.headers.first(name: "X-Sidecar-Cache") == "exact")
        #expect(fixture.sink.headers.first(name: "X-Query-Cost") == "0")
        #expect(fixture.sink.text == #"{"cached":true}"#)
        #expect(fixture.sink.headers.first(name: "X-Model-Used") == "big-cloud")
    }

    // MARK: Answers without usage, and what a breaker protects

    @Test func aStreamWithoutUsageIsPricedByEstimateAndSaysSo() throws {
        let fixture = try Fixture()
        // 40 bytes of prompt in one message: 10 + 4 + 3 = 17 tokens.
        let prompt = String(repeating: "abcd", count: 10)
        fixture.run(#"{"model":"pin/big-cloud","stream":true,"messages":[{"role":"user","content":"\#(prompt)"}]}"#)
        let call = try #require(fixture.transport.last)
        call.head(200, [("Content-Type", "text/event-stream")])
        // 8 bytes of generated text: 2 tokens. llama.cpp's server sends no usage chunk.
        call.chunk("data: {\"choices\": [{\"delta\": {\"content\": \"12345678\"}}]}\n\ndata: [DONE]\n\n")
        call.end()
        #expect(fixture.sink.headers.first(name: "Trailer") == "X-Query-Cost, X-Sidecar-Cost-Estimated")
        // 17 x $2.50 + 2 x $10 per million tokens.
        #expect(fixture.sink.trailers?.first(name: "X-Query-Cost") == "0.0000625")
        #expect(fixture.sink.trailers?.first(name: "X-Sidecar-Cost-Estimated") == "true")
        #expect(
            fixture.metrics.contains(
                #"llm_sidecar_cost_usd_total{model="big-cloud",app="default",source="estimate"} 6.25e-05"#
            )
        )
    }

    @Test func aStreamThatAskedForUsageGetsAnEstimatedUsageChunk() throws {
        let fixture = try Fixture()
        fixture.run(
            #"{"model":"pin/big-cloud","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#
        )
        let call = try #require(fixture.transport.last)
        call.head(200, [("Content-Type", "text/event-stream")])
        call.chunk("data: {\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}\n\ndata: [DONE]\n\n")
        call.end()
        #expect(fixture.sink.text.contains(#""usage":{"prompt_tokens":8,"completion_tokens":1,"total_tokens":9}"#))
        #expect(fixture.sink.text.hasSuffix("data: [DONE]\n\n"))
        #expect(fixture.sink.trailers?.first(name: "X-Sidecar-Cost-Estimated") == "true")
    }

    @Test func aWholeAnswerWithoutUsageIsPricedByEstimate() throws {
        let fixture = try Fixture()
        fixture.run(#"{"model":"pin/big-cloud","messages":[{"role":"user","content":"hi"}]}"#)
        let call = try #require(fixture.transport.last)
        call.answer(200, #"{"choices":[{"message":{"role":"assistant","content":"12345678"}}]}"#)
        // 8 x $2.50 + 2 x $10 per million tokens.
        #expect(fixture.sink.headers.first(name: "X-Query-Cost") == "0.00004")
        #expect(fixture.sink.headers.first(name: "X-Sidecar-Cost-Estimated") == "true")
    }

    @Test func anAnswerWithUsageIsNotMarkedAsAnEstimate() throws {
        let fixture = try Fixture()
        fixture.run(#"{"model":"pin/big-cloud","messages":[{"role":"user","content":"hi"}]}"#)
        try #require(fixture.transport.last).answer(200, Self.answer)
        #expect(fixture.sink.headers.first(name: "X-Sidecar-Cost-Estimated") == nil)
    }

    @Test func failingEmbeddingsDoNotTakeTheUpstreamsChatTrafficAway() throws {
        let fixture = try Fixture("[breaker]\nconsecutive_failures = 2\n" + Fixture.toml)
        let unsupported = #"{"error":{"message":"Embeddings are not enabled","type":"server_error"}}"#
        for _ in 1...2 {
            let before = fixture.transport.calls.count
            let sink = FakeClientSink()
            let lifecycle = RequestLifecycle(
                ProxyRequest(
                    endpoint: .embeddings,
                    method: .post,
                    path: "/v1/embeddings",
                    headers: HTTPHeaders(),
                    body: ByteBuffer(string: #"{"model":"embed-cloud","input":"hi"}"#),
                    requestID: "e"
                ),
                phases: fixture.phases,
                sink: sink
            )
            let environment = fixture.phases.forwardEnvironment(transport: fixture.transport, eventLoop: fixture.loop)
            _ = lifecycle.run(environment: environment, headTimer: fixture.headTimer)
            while fixture.transport.calls.count > before, let call = fixture.transport.last, call.delegate != nil {
                call.answer(500, unsupported)
                fixture.loop.advanceTime(by: .seconds(10))
            }
            #expect(sink.status?.code == 502 || sink.status?.code == 503)
        }
        #expect(fixture.phases.resilience.breaker("cloud", .embeddings)?.state == .open)
        #expect(fixture.phases.resilience.breaker("cloud", .generation)?.state == .closed)
        // Chat traffic still goes to the cloud, not to a fallback.
        fixture.run(#"{"model":"pin/big-cloud","messages":[{"role":"user","content":"hi"}]}"#)
        let chat = try #require(fixture.transport.last)
        #expect(chat.request.upstreamName == "cloud")
        chat.answer(200, Self.answer)
        #expect(fixture.sink.status == .ok)
        #expect(fixture.sink.headers.first(name: "X-Sidecar-Fallback") == nil)
    }

    @Test func anUpstreamWithMaxConcurrentOneServesOneRequestAtATime() throws {
        let toml = Fixture.toml.replacingOccurrences(
            of: "base_url = \"http://127.0.0.1:11434/v1\"",
            with: "base_url = \"http://127.0.0.1:11434/v1\"\nmax_concurrent = 1"
        )
        let fixture = try Fixture(toml)
        let first = FakeClientSink()
        let second = FakeClientSink()
        let environment = fixture.phases.forwardEnvironment(transport: fixture.transport, eventLoop: fixture.loop)
        for sink in [first, second] {
            let request = ProxyRequest(
                endpoint: .chatCompletions,
                method: .post,
                path: "/v1/chat/completions",
                headers: HTTPHeaders(),
                body: ByteBuffer(string: #"{"model":"pin/small-local","stream":true,"messages":[]}"#),
                requestID: "r"
            )
            _ = RequestLifecycle(request, phases: fixture.phases, sink: sink)
                .run(environment: environment, headTimer: fixture.headTimer)
        }
        // The second waits in line while the first streams.
        #expect(fixture.transport.calls.count == 1)
        let call = try #require(fixture.transport.last)
        call.head(200, [("Content-Type", "text/event-stream")])
        call.chunk("data: {}\n\n")
        fixture.loop.run()
        #expect(fixture.transport.calls.count == 1)
        call.chunk("data: [DONE]\n\n")
        call.end()
        fixture.loop.run()
        #expect(first.ended)
        #expect(fixture.transport.calls.count == 2)
        fixture.transport.last?.answer(200, Self.answer)
        #expect(second.status == .ok)
        #expect(fixture.phases.limiter?.inFlight("ollama") == 0)
    }
}
