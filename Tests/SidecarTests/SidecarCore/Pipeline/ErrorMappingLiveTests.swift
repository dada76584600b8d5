import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOPosix
import Testing

@testable import SidecarCore

/// Every failure becomes an OpenAI-shaped error with the documented status.
@Suite struct ErrorMappingLiveTests {
    static let json: HTTPFields = [.contentType: "application/json"]

    static func error(_ response: SidecarTestResponse) -> [String: Any]? {
        let object = try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
        return object?["error"] as? [String: Any]
    }

    @Test func malformedJSONIs400() async throws {
        try await SidecarHarness.run(try SidecarHarness.configuration(port: 1)) { client, _, _ in
            let body = ByteBuffer(string: #"{"model": "x", "messages": [}"#)
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.json, body: body) {
                response in
                #expect(response.status == .badRequest)
                let error = try #require(Self.error(response))
                #expect(error["type"] as? String == "invalid_request_error")
                #expect(error["code"] as? String == "invalid_json")
                #expect(response.headers[SidecarHeaders.requestID] != nil)
            }
            let wrongType = ByteBuffer(string: #"{"model": "x", "messages": "not a list"}"#)
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.json, body: wrongType) {
                #expect($0.status == .badRequest)
                #expect((Self.error($0)?["message"] as? String)?.contains("messages") == true)
            }
        }
    }

    @Test func oversizedBodyIs413() async throws {
        let config = try SidecarHarness.configuration(port: 1, extra: "")
        var small = config
        small.server.maxBodyBytes = 2048
        try await SidecarHarness.run(small) { client, _, _ in
            let body = SidecarHarness.chatBody(String(repeating: "a", count: 5000))
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.json, body: body) {
                response in
                #expect(response.status == .contentTooLarge)
                #expect(Self.error(response)?["code"] as? String == "request_too_large")
            }
        }
    }

    @Test func downUpstreamIs502NamingTheUpstreamWithinTheConnectTimeout() async throws {
        let port = try closedPort()
        try await SidecarHarness.run(try SidecarHarness.configuration(port: port)) { client, _, _ in
            let started = ContinuousClock.now
            let body = SidecarHarness.chatBody(SidecarHarness.simplePrompt)
            try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.json, body: body) {
                response in
                #expect(response.status == .badGateway)
                let error = try #require(Self.error(response))
                let message = try #require(error["message"] as? String)
                #expect(message.contains(#"Upstream "ollama" failed after 3 attempt(s): connect_failed"#))
                #expect(error["type"] as? String == "upstream_error")
            }
            // Refused at once; three attempts with their backoff (a wide bound: CI machines are loaded).
            #expect(ContinuousClock.now - started < .milliseconds(5000))
        }
    }

    @Test func upstreamErrorStatusIsRelayedWithItsBody() async throws {
        try await FakeUpstream.run { _, port in
            try await SidecarHarness.run(try SidecarHarness.configuration(port: port)) { client, _, _ in
                var headers = Self.json
                // A client error (a 401 or 403 to the sidecar's own key fails over instead).
                headers[HTTPField.Name("x-fake-status")!] = "422"
                let body = SidecarHarness.chatBody("hi")
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: body) {
                    response in
                    #expect(response.status == .unprocessableContent)
                    #expect((Self.error(response)?["message"] as? String) == "scripted failure 422")
                    #expect(response.headers[SidecarHeaders.modelUsed] == "small-local")
                    #expect(response.headers[SidecarHeaders.queryCost] == "0")
                }
            }
        }
    }

    @Test func hangingUpstreamIs504AtTheRequestDeadline() async throws {
        try await FakeUpstream.run { _, port in
            let config = try SidecarHarness.configuration(port: port, timeouts: "[timeouts]\nrequest_ms = 300")
            try await SidecarHarness.run(config) { client, _, _ in
                let elapsed = try await Self.expectTimeoutOnHang(client, hangMilliseconds: 1500)
                #expect(elapsed < .seconds(5))
            }
        }
    }

    /// The first-byte timer is one coalesced task per connection: quick answers before a hanging
    /// one must leave it armed for the hanging one.
    @Test func firstByteDeadlineHoldsAfterQuickAnswers() async throws {
        try await FakeUpstream.run { _, port in
            // Margins wide enough for a loaded CI machine (200 ms and then 1 s deadlines each failed
            // a quick answer there, while CPU-bound tests held the fake upstream's threads). The
            // request deadline is far away and there is one attempt, so only a first-byte timer
            // still armed for the hanging request can end it before the upstream answers (200) at
            // 10 s.
            let timeouts = "[timeouts]\nfirst_byte_ms = 3000\nrequest_ms = 30000\n[retry]\nmax_attempts = 1"
            let config = try SidecarHarness.configuration(port: port, timeouts: timeouts)
            try await SidecarHarness.run(config) { client, _, _ in
                for _ in 0..<3 {
                    try await client.execute(
                        uri: "/v1/chat/completions",
                        method: .post,
                        headers: Self.json,
                        body: SidecarHarness.chatBody("hi")
                    ) { response in
                        #expect(response.status == .ok)
                    }
                }
                let elapsed = try await Self.expectTimeoutOnHang(client, hangMilliseconds: 10000)
                #expect(elapsed < .milliseconds(8000))
            }
        }
    }

    /// Sends a chat request the fake upstream answers only after `hangMilliseconds`; expects an
    /// OpenAI-shaped 504 and returns how long it took.
    private static func expectTimeoutOnHang(
        _ client: SidecarTestClient,
        hangMilliseconds: Int
    ) async throws -> Duration {
        var headers = Self.json
        headers[HTTPField.Name("x-fake-hang-ms")!] = String(hangMilliseconds)
        // The same body was answered before: keep the cache out of a test of the deadline.
        headers[.cacheControl] = "no-cache"
        let started = ContinuousClock.now
        try await client.execute(
            uri: "/v1/chat/completions",
            method: .post,
            headers: headers,
            body: SidecarHarness.chatBody("hi")
        ) { response in
            #expect(response.status == .gatewayTimeout)
            #expect(Self.error(response)?["type"] as? String == "timeout_error")
        }
        return ContinuousClock.now - started
    }

    @Test func unknownPathIs404InOpenAIShape() async throws {
        try await SidecarHarness.run(try SidecarHarness.configuration(port: 1)) { client, _, _ in
            try await client.execute(uri: "/nope", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(Self.error(response)?["code"] as? String == "unknown_url")
            }
        }
    }
}
