import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import SidecarCore

/// Retries, fallbacks and breakers through the live sidecar against scripted fake upstreams.
@Suite struct ResilienceLiveTests {
    static let json: HTTPFields = [.contentType: "application/json"]

    /// `local` serves small-local, `cloud` serves big-cloud; each falls back to the other.
    static func configuration(localPort: Int, cloudPort: Int, extra: String = "") throws -> SidecarConfiguration {
        try SidecarConfiguration(
            toml: """
                [[upstreams]]
                name = "local"
                base_url = "http://127.0.0.1:\(localPort)/v1"
                [[upstreams]]
                name = "cloud"
                base_url = "http://127.0.0.1:\(cloudPort)/v1"
                [[models]]
                name = "small-local"
                upstream = "local"
                fallbacks = ["big-cloud"]
                [[models]]
                name = "big-cloud"
                upstream = "cloud"
                input_usd_per_mtok = 2.5
                output_usd_per_mtok = 10
                fallbacks = ["small-local"]
                [routing]
                tiers = [ { max_score = 0.40, model = "small-local" }, { max_score = 1.01, model = "big-cloud" } ]
                [retry]
                base_delay_ms = 10
                max_delay_ms = 50
                \(extra)
                [cache]
                enabled = false
                """,
            file: "resilience.conf"
        )
    }

    static func chat(
        _ client: SidecarTestClient,
        _ prompt: String,
        headers: HTTPFields = json
    ) async throws
        -> SidecarTestResponse
    {
        try await client.execute(
            uri: "/v1/chat/completions",
            method: .post,
            headers: headers,
            body: SidecarHarness.chatBody(prompt)
        )
    }

    @Test func retriesServerErrorsThenSucceeds() async throws {
        try await FakeUpstream.run { fake, port in
            fake.script([503, 500])
            try await SidecarHarness.run(try Self.configuration(localPort: port, cloudPort: port)) { client, _, _ in
                let response = try await Self.chat(client, "hi")
                #expect(response.status == .ok)
                #expect(response.headers[SidecarHeaders.modelUsed] == "small-local")
                #expect(response.headers[SidecarHeaders.fallback] == nil)
                #expect(fake.chatCount == 3)
            }
        }
    }

    @Test func cloudDownFallsBackToLocal() async throws {
        let deadPort = try closedPort()
        try await FakeUpstream.run { fake, port in
            try await SidecarHarness.run(try Self.configuration(localPort: port, cloudPort: deadPort)) { client, _, _ in
                let response = try await Self.chat(client, SidecarHarness.hardPrompt)
                #expect(response.status == .ok)
                #expect(response.headers[SidecarHeaders.modelUsed] == "small-local")
                #expect(response.headers[SidecarHeaders.upstream] == "local")
                #expect(response.headers[SidecarHeaders.fallback] == "true")
                #expect(response.headers[SidecarHeaders.queryCost] == "0")
                #expect(fake.lastRequest?.json?["model"] as? String == "small-local")
            }
        }
    }

    /// A cloud upstream that takes the TCP connection and never answers the TLS handshake: the
    /// connect timeout ends the handshake, and a burst waiting for it falls back at once (before:
    /// each request waited out the first-byte timeout, 30 s here).
    @Test func silentTLSUpstreamFallsBackWithinTheConnectTimeout() async throws {
        let silent = try HandshakeDeadlineTests.silent()
        defer { withExtendedLifetime(silent) {} }
        let silentPort = silent.port
        try await FakeUpstream.run { fake, port in
            var configuration = try Self.configuration(
                localPort: port,
                cloudPort: port,
                extra: """
                    [timeouts]
                    connect_ms = 300
                    first_byte_ms = 30000
                    """
            )
            configuration.upstreams[1].baseURL = "https://127.0.0.1:\(silentPort)/v1"
            try await SidecarHarness.run(configuration) { client, _, _ in
                let started = ContinuousClock.now
                try await withThrowingTaskGroup(of: SidecarTestResponse.self) { group in
                    for _ in 0..<8 { group.addTask { try await Self.chat(client, SidecarHarness.hardPrompt) } }
                    for try await response in group {
                        #expect(response.status == .ok)
                        #expect(response.headers[SidecarHeaders.modelUsed] == "small-local")
                        #expect(response.headers[SidecarHeaders.fallback] == "true")
                    }
                }
                #expect(ContinuousClock.now - started < .seconds(15))
                #expect(fake.chatCount == 8)
            }
        }
    }

    @Test func localDownFallsBackToCloud() async throws {
        let deadPort = try closedPort()
        try await FakeUpstream.run { _, port in
            try await SidecarHarness.run(try Self.configuration(localPort: deadPort, cloudPort: port)) { client, _, _ in
                let response = try await Self.chat(client, "What is 2+2?")
                #expect(response.status == .ok)
                #expect(response.headers[SidecarHeaders.modelUsed] == "big-cloud")
                #expect(response.headers[SidecarHeaders.fallback] == "true")
                #expect(response.headers[SidecarHeaders.queryCost] == "0.008755")
            }
        }
    }

    @Test func nonRetryableStatusIsRelayedWithoutRetryOrFallback() async throws {
        try await FakeUpstream.run { fake, port in
            fake.script([400])
            try await SidecarHarness.run(try Self.configuration(localPort: port, cloudPort: port)) { client, _, _ in
                let response = try await Self.chat(client, "hi")
                #expect(response.status == .badRequest)
                #expect(fake.chatCount == 1)
            }
        }
    }

    @Test func rateLimitHonoursRetryAfter() async throws {
        try await FakeUpstream.run { fake, port in
            fake.script([429], retryAfter: "1")
            try await SidecarHarness.run(try Self.configuration(localPort: port, cloudPort: port)) { client, _, _ in
                let started = ContinuousClock.now
                let response = try await Self.chat(client, "hi")
                #expect(response.status == .ok)
                #expect(ContinuousClock.now - started >= .seconds(1))
                #expect(fake.chatCount == 2)
            }
        }
    }

    @Test func persistentRateLimitIs429WithRetryAfter() async throws {
        try await FakeUpstream.run { fake, port in
            fake.script(Array(repeating: 429, count: 10), retryAfter: "120")
            let config = try Self.configuration(localPort: port, cloudPort: port, extra: "max_retry_after_ms = 1000")
            var noFallback = config
            noFallback.models = noFallback.models.map {
                var model = $0
                model.fallbacks = []
                return model
            }
            try await SidecarHarness.run(noFallback) { client, _, _ in
                let response = try await Self.chat(client, "hi")
                #expect(response.status == .tooManyRequests)
                #expect(response.headers[.retryAfter] == "120")
                let error = try #require(ErrorMappingLiveTests.error(response))
                #expect(error["type"] as? String == "rate_limit_error")
                #expect(fake.chatCount == 1)
            }
        }
    }

    @Test func openBreakerStopsTrafficThenRecovers() async throws {
        try await FakeUpstream.run { fake, port in
            let extra = """
                max_attempts = 1
                [breaker]
                consecutive_failures = 2
                cooldown_ms = 2000
                """
            var config = try Self.configuration(localPort: port, cloudPort: port, extra: extra)
            config.models = config.models.map {
                var model = $0
                model.fallbacks = []
                return model
            }
            fake.script([500, 500])
            try await SidecarHarness.run(config) { client, _, _ in
                #expect(try await Self.chat(client, "hi").status == .badGateway)
                #expect(try await Self.chat(client, "hi").status == .badGateway)
                #expect(fake.chatCount == 2)
                // Open: the upstream gets nothing, the client gets 503 with Retry-After.
                // (A 2 s cooldown: a loaded CI machine once took longer than 300 ms to get from the
                // second failure to the readiness check below, and found the breaker half open.)
                let rejected = try await Self.chat(client, "hi")
                #expect(rejected.status == .serviceUnavailable)
                // The cooldown left, rounded up to whole seconds.
                #expect(["1", "2"].contains(rejected.headers[.retryAfter]))
                #expect(fake.chatCount == 2)
                try await client.execute(uri: "/readyz", method: .get) { response in
                    #expect(String(buffer: response.body).contains(#""local":{"breaker":"open"}"#))
                }
                // After the cooldown one probe goes through, succeeds and closes the breaker.
                try await Task.sleep(for: .milliseconds(2100))
                #expect(try await Self.chat(client, "hi").status == .ok)
                #expect(try await Self.chat(client, "hi").status == .ok)
                #expect(fake.chatCount == 4)
                try await client.execute(uri: "/readyz", method: .get) { response in
                    #expect(String(buffer: response.body).contains(#""local":{"breaker":"closed"}"#))
                }
            }
        }
    }

    @Test func upstreamFailingMidStreamEndsWithAnErrorEventAndDone() async throws {
        try await FakeUpstream.run { _, port in
            try await SidecarHarness.run(try Self.configuration(localPort: port, cloudPort: port)) { client, _, _ in
                var headers = Self.json
                headers[HTTPField.Name("x-fake-abort-after")!] = "2"
                let response = try await client.execute(
                    uri: "/v1/chat/completions",
                    method: .post,
                    headers: headers,
                    body: SidecarHarness.chatBody("hi", stream: true)
                )
                #expect(response.status == .ok)
                let lines = StreamingLiveTests.dataLines(response.body)
                #expect(lines.count == 4)
                #expect(lines[0].contains("part0"))
                #expect(lines[1].contains("part1"))
                #expect(lines[2].contains(#""error""#))
                #expect(lines[3] == "[DONE]")
                #expect(response.trailerHeaders?[SidecarHeaders.queryCost] == "0")
            }
        }
    }

    @Test func streamThatDiesBeforeItsFirstChunkIsRetried() async throws {
        try await FakeUpstream.run { fake, port in
            fake.abortNextStreamsBeforeFirstChunk(1)
            try await SidecarHarness.run(try Self.configuration(localPort: port, cloudPort: port)) { client, _, _ in
                let response = try await client.execute(
                    uri: "/v1/chat/completions",
                    method: .post,
                    headers: Self.json,
                    body: SidecarHarness.chatBody("hi", stream: true)
                )
                #expect(response.status == .ok)
                let lines = StreamingLiveTests.dataLines(response.body)
                #expect(lines.count == 5)
                #expect(!lines.contains { $0.contains(#""error""#) })
                #expect(fake.chatCount == 2)
            }
        }
    }

    @Test func bothTiersDownIs502ListingEveryCandidateTried() async throws {
        let deadPort = try closedPort()
        let config = try Self.configuration(localPort: deadPort, cloudPort: deadPort)
        try await SidecarHarness.run(config) { client, _, _ in
            let response = try await Self.chat(client, "hi")
            #expect(response.status == .badGateway)
            let message = try #require(ErrorMappingLiveTests.error(response)?["message"] as? String)
            #expect(
                message.contains(
                    "Tried in order: small-local (3 attempt(s)): local connect_failed; big-cloud (3 attempt(s)): cloud connect_failed."
                )
            )
        }
    }
}
