import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import SidecarCore
@testable import SidecarHTTP

/// The sidecar on 127.0.0.1:0 in front of a fake upstream on 127.0.0.1:0.
@Suite struct ProxyLiveTests {
    static let json: HTTPFields = [.contentType: "application/json"]

    @Test func simplePromptGoesToTheLocalTierWithHeaders() async throws {
        try await FakeUpstream.run { fake, port in
            try await SidecarHarness.run(try SidecarHarness.configuration(port: port)) { client, _, _ in
                let body = SidecarHarness.chatBody(SidecarHarness.simplePrompt)
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.json, body: body) {
                    response in
                    #expect(response.status == .ok)
                    #expect(response.headers[SidecarHeaders.modelUsed] == "small-local")
                    #expect(response.headers[SidecarHeaders.upstream] == "ollama")
                    #expect(response.headers[SidecarHeaders.queryCost] == "0")
                    #expect(response.headers[SidecarHeaders.cache] == "miss")
                    #expect(response.headers[SidecarHeaders.complexity]?.count == 5)
                    #expect(response.headers[SidecarHeaders.requestID]?.count == 32)
                }
                let forwarded = try #require(fake.lastRequest)
                #expect(forwarded.json?["model"] as? String == "small-local")
                #expect(forwarded.headers[.authorization] == nil)
            }
        }
    }

    @Test func hardPromptGoesToTheCloudTierAndIsPricedToTheMicroDollar() async throws {
        try await FakeUpstream.run { fake, port in
            try await SidecarHarness.run(try SidecarHarness.configuration(port: port)) { client, _, _ in
                let body = SidecarHarness.chatBody(SidecarHarness.hardPrompt)
                var headers = Self.json
                headers[.authorization] = "Bearer client-key"
                headers[SidecarHeaders.requestID] = "req-123"
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: body) {
                    response in
                    #expect(response.status == .ok)
                    #expect(response.headers[SidecarHeaders.modelUsed] == "big-cloud")
                    #expect(response.headers[SidecarHeaders.upstream] == "cloud")
                    // 1234 prompt x $2.50/M + 567 completion x $10/M = $0.008755
                    #expect(response.headers[SidecarHeaders.queryCost] == "0.008755")
                    #expect(response.headers[SidecarHeaders.requestID] == "req-123")
                }
                let forwarded = try #require(fake.lastRequest)
                #expect(forwarded.json?["model"] as? String == "big-cloud")
                #expect(forwarded.headers[.authorization] == "Bearer sk-cloud-secret")
                #expect(forwarded.headers[SidecarHeaders.requestID] == "req-123")
                #expect(forwarded.path == "/v1/chat/completions")
            }
        }
    }

    @Test func unknownFieldsAreForwardedVerbatim() async throws {
        try await FakeUpstream.run { fake, port in
            try await SidecarHarness.run(try SidecarHarness.configuration(port: port)) { client, _, _ in
                let body = SidecarHarness.chatBody(
                    "hi",
                    extra: #","temperature":0.25,"x_vendor":{"a":[1,2,{"b":null}]}"#
                )
                _ = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.json, body: body)
                let forwarded = try #require(fake.lastRequest)
                let text = String(buffer: forwarded.body)
                #expect(text.hasSuffix(#","stream":false,"temperature":0.25,"x_vendor":{"a":[1,2,{"b":null}]}}"#))
            }
        }
    }

    @Test func pinHeaderAndPrefixKeepTheModel() async throws {
        try await FakeUpstream.run { fake, port in
            try await SidecarHarness.run(try SidecarHarness.configuration(port: port)) { client, _, _ in
                var headers = Self.json
                headers[HTTPField.Name("X-Sidecar-Pin")!] = "1"
                let body = SidecarHarness.chatBody("hi", model: "big-cloud")
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: headers, body: body) {
                    response in
                    #expect(response.headers[SidecarHeaders.modelUsed] == "big-cloud")
                    #expect(response.headers[SidecarHeaders.route] == "pinned")
                }
                #expect(fake.lastRequest?.headers[HTTPField.Name("X-Sidecar-Pin")!] == nil)
                let prefixed = SidecarHarness.chatBody("hi", model: "pin/big-cloud")
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.json, body: prefixed)
                {
                    #expect($0.headers[SidecarHeaders.modelUsed] == "big-cloud")
                }
                #expect(fake.lastRequest?.json?["model"] as? String == "big-cloud")
            }
        }
    }

    @Test func completionsAndEmbeddingsArePriced() async throws {
        try await FakeUpstream.run { _, port in
            try await SidecarHarness.run(try SidecarHarness.configuration(port: port)) { client, _, _ in
                let completion = ByteBuffer(
                    string:
                        #"{"model":"x","prompt":"\#(SidecarHarness.hardPrompt.replacingOccurrences(of: "\n", with: " "))"}"#
                )
                try await client.execute(uri: "/v1/completions", method: .post, headers: Self.json, body: completion) {
                    response in
                    #expect(response.status == .ok)
                    #expect(response.headers[SidecarHeaders.modelUsed] == "big-cloud")
                    #expect(response.headers[SidecarHeaders.queryCost] == "0.008755")
                }
                let embedding = ByteBuffer(string: #"{"model":"embed-cloud","input":"hello"}"#)
                try await client.execute(uri: "/v1/embeddings", method: .post, headers: Self.json, body: embedding) {
                    response in
                    #expect(response.status == .ok)
                    #expect(response.headers[SidecarHeaders.upstream] == "cloud")
                    // 1000 tokens x $0.02/M
                    #expect(response.headers[SidecarHeaders.queryCost] == "0.00002")
                }
            }
        }
    }

    @Test func modelsListsConfiguredModelsAndAuto() async throws {
        try await SidecarHarness.run(try SidecarHarness.configuration(port: 1)) { client, _, _ in
            try await client.execute(uri: "/v1/models", method: .get) { response in
                let list =
                    try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                let ids = (list?["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
                #expect(ids == ["auto", "small-local", "big-cloud", "embed-cloud", "all-MiniLM-L6-v2"])
            }
        }
    }

    @Test func healthAndReadiness() async throws {
        try await SidecarHarness.run(try SidecarHarness.configuration(port: 1)) { client, _, _ in
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok) }
        }
    }

    @Test func otherV1PathsAndOllamaNativeAreForwarded() async throws {
        try await FakeUpstream.run { fake, port in
            try await SidecarHarness.run(try SidecarHarness.configuration(port: port)) { client, _, _ in
                try await client.execute(uri: "/v1/files?purpose=batch", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[SidecarHeaders.upstream] == "ollama")
                }
                #expect(fake.lastRequest?.path == "/v1/files?purpose=batch")
                try await client.execute(uri: "/api/tags", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(String(buffer: response.body).contains("llama3.2:3b"))
                }
                #expect(fake.lastRequest?.path == "/api/tags")
            }
        }
    }

    @Test func metricsAreExposedInPrometheusFormat() async throws {
        try await FakeUpstream.run { _, port in
            try await SidecarHarness.run(try SidecarHarness.configuration(port: port)) { client, _, _ in
                let body = SidecarHarness.chatBody(SidecarHarness.hardPrompt)
                _ = try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.json, body: body)
                try await client.execute(uri: "/metrics", method: .get) { response in
                    let text = String(buffer: response.body)
                    #expect(
                        text.contains(
                            #"llm_sidecar_requests_total{endpoint="chat_completions",model="big-cloud",tier="1",cache="miss",status="200"} 1"#
                        )
                    )
                    let costLine = text.split(separator: "\n").first {
                        $0.hasPrefix(#"llm_sidecar_cost_usd_total{model="big-cloud",app="default",source="usage"}"#)
                    }
                    let cost = costLine.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }
                    #expect(abs((cost ?? 0) - 0.008755) < 1e-12)
                    #expect(text.contains(#"llm_sidecar_tokens_total{model="big-cloud",kind="prompt"} 1234"#))
                    #expect(text.contains(#"llm_sidecar_upstream_responses_total{upstream="cloud",status="200"}"#))
                    #expect(text.contains("llm_sidecar_upstream_first_byte_seconds"))
                }
            }
        }
    }
}

@Suite struct SidecarHeadersTests {
    @Test func headerConstantsHaveTheirDocumentedNames() {
        #expect(SidecarHeaders.modelUsed.rawName == "X-Model-Used")
        #expect(SidecarHeaders.queryCost.rawName == "X-Query-Cost")
        #expect(SidecarHeaders.cache.rawName == "X-Sidecar-Cache")
        #expect(SidecarHeaders.complexity.rawName == "X-Sidecar-Complexity")
        #expect(SidecarHeaders.upstream.rawName == "X-Sidecar-Upstream")
        #expect(SidecarHeaders.requestID.rawName == "X-Request-Id")
        #expect(SidecarHeaders.upstreamRequestID.rawName == "X-Upstream-Request-Id")
        #expect(SidecarHeaders.route.rawName == "X-Sidecar-Route")
        #expect(SidecarHeaders.trailer.rawName == "Trailer")
        #expect(SidecarHeaders.hopByHop.count == 10)
    }

    @Test func caseInsensitiveEqualsFoldsASCIIOnly() {
        #expect("Content-Length".caseInsensitiveEquals("content-length"))
        #expect("TE".caseInsensitiveEquals("te"))
        #expect("x-request-id".caseInsensitiveEquals("x-request-id"))
        #expect(!"Content-Lengtx".caseInsensitiveEquals("content-length"))
        #expect(!"te".caseInsensitiveEquals("t"))
        #expect(!"@".caseInsensitiveEquals("`"))  // 0x40 | 0x20 == 0x60, but '@' is not a letter
        #expect(!"[".caseInsensitiveEquals("{"))
        #expect(!"\u{C9}".caseInsensitiveEquals("\u{E9}"))  // non-ASCII is compared exactly
        let long = String(repeating: "Proxy-Authorization-", count: 4)
        #expect(long.caseInsensitiveEquals(long.lowercased()))
        #expect(SidecarHeaders.isDropped(requestHeader: "X-Sidecar-Pin"))
        for name in ["X-Forwarded-For", "x-forwarded-proto", "Forwarded", "X-Real-IP", "Via", "Accept-Encoding", "TE"] {
            #expect(SidecarHeaders.isDropped(requestHeader: name), "\(name)")
        }
        for name in ["X-Forwarded", "Content-Type", "OpenAI-Organization", "X-Request", "Viaduct", "x-sidecar-"] {
            #expect(!SidecarHeaders.isDropped(requestHeader: name), "\(name)")
        }
        #expect(SidecarHeaders.isDropped(responseHeader: "Transfer-Encoding"))
        #expect(!SidecarHeaders.isDropped(responseHeader: "Content-Type"))
    }

    @Test func complexityHasThreeDecimals() {
        #expect(SidecarHeaders.complexityValue(0.07449) == "0.074")
        #expect(SidecarHeaders.complexityValue(1) == "1.000")
        #expect(SidecarHeaders.complexityValue(0.5) == "0.500")
        #expect(SidecarHeaders.complexityValue(0) == "0.000")
        #expect(SidecarHeaders.complexityValue(0.0996) == "0.100")
        #expect(SidecarHeaders.complexityValue(0.0004) == "0.000")
        #expect(SidecarHeaders.complexityValue(-3) == "0.000")
        #expect(SidecarHeaders.complexityValue(.nan) == "0.000")
        #expect(SidecarHeaders.complexityValue(7) == "1.000")
        for thousandths in 0...1000 {
            let text = SidecarHeaders.complexityValue(Double(thousandths) / 1000)
            #expect(Double(text) == Double(thousandths) / 1000 && text.utf8.count == 5, "\(thousandths)")
        }
    }
}
