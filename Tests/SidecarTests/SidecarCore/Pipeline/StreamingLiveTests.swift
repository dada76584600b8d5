import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing

@testable import SidecarCore

/// Streaming through the live sidecar: order, timing, trailers, usage, cancellation.
@Suite struct StreamingLiveTests {
    static let json: HTTPFields = [.contentType: "application/json"]

    static func dataLines(_ body: ByteBuffer) -> [String] {
        String(buffer: body).split(separator: "\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
    }

    @Test func streamIsRelayedInOrderWithCostTrailerAndNoUsageChunk() async throws {
        try await FakeUpstream.run { fake, port in
            try await SidecarHarness.run(try SidecarHarness.configuration(port: port)) { client, _, _ in
                let body = SidecarHarness.chatBody(SidecarHarness.hardPrompt, stream: true)
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.json, body: body) {
                    response in
                    #expect(response.status == .ok)
                    #expect(response.headers[.contentType] == "text/event-stream")
                    #expect(response.headers[SidecarHeaders.modelUsed] == "big-cloud")
                    #expect(response.headers[SidecarHeaders.trailer] == "X-Query-Cost, X-Sidecar-Cost-Estimated")
                    #expect(response.trailerHeaders?[SidecarHeaders.costEstimated] == nil)
                    #expect(response.headers[SidecarHeaders.queryCost] == nil)
                    #expect(response.trailerHeaders?[SidecarHeaders.queryCost] == "0.008755")
                    let lines = Self.dataLines(response.body)
                    #expect(lines.count == 5)
                    for index in 0..<4 { #expect(lines[index].contains("part\(index) ")) }
                    #expect(lines.last == "[DONE]")
                    #expect(!lines.contains { $0.contains("\"usage\"") })
                }
                let forwarded = try #require(fake.lastRequest?.json)
                #expect((forwarded["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true)
            }
        }
    }

    @Test func usageChunkIsKeptWhenTheClientAskedForIt() async throws {
        try await FakeUpstream.run { _, port in
            try await SidecarHarness.run(try SidecarHarness.configuration(port: port)) { client, _, _ in
                let body = SidecarHarness.chatBody(
                    "hi",
                    stream: true,
                    extra: #","stream_options":{"include_usage":true}"#
                )
                try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.json, body: body) {
                    response in
                    let lines = Self.dataLines(response.body)
                    #expect(lines.count == 6)
                    #expect(lines[4].contains(#""usage""#))
                    #expect(response.trailerHeaders?[SidecarHeaders.queryCost] == "0")
                }
            }
        }
    }

    @Test func firstChunkReachesTheClientBeforeTheUpstreamFinishes() async throws {
        try await FakeUpstream.run { fake, port in
            try await SidecarHarness.run(try SidecarHarness.configuration(port: port)) { _, sidecarPort, _ in
                let http = HTTPClient(eventLoopGroupProvider: .singleton)
                defer { _ = http.shutdown() }
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(sidecarPort)/v1/chat/completions")
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "x-fake-chunk-delay-ms", value: "150")
                request.body = .bytes(SidecarHarness.chatBody("hi", stream: true))
                let response = try await http.execute(request, timeout: .seconds(10))
                var arrivals: [ContinuousClock.Instant] = []
                var text = ""
                for try await chunk in response.body {
                    arrivals.append(.now)
                    text += String(buffer: chunk)
                }
                let finished = try #require(fake.streamFinishedAt)
                let first = try #require(arrivals.first)
                #expect(first < finished)
                // Four content chunks 150 ms apart cannot arrive in one piece.
                #expect(arrivals.count >= 4)
                #expect(text.hasSuffix("data: [DONE]\n\n"))
            }
        }
    }

    @Test func clientDisconnectCancelsTheUpstreamRequest() async throws {
        try await FakeUpstream.run { fake, port in
            try await SidecarHarness.run(try SidecarHarness.configuration(port: port)) { _, sidecarPort, _ in
                let http = HTTPClient(eventLoopGroupProvider: .singleton)
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(sidecarPort)/v1/chat/completions")
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "x-fake-chunk-delay-ms", value: "100")
                request.headers.add(name: "x-fake-chunks", value: "100")
                request.body = .bytes(SidecarHarness.chatBody("hi", stream: true))
                let response = try await http.execute(request, timeout: .seconds(30))
                var iterator = response.body.makeAsyncIterator()
                _ = try await iterator.next()
                // Drop the connection mid-stream.
                try await http.shutdown()
                let deadline = ContinuousClock.now + .seconds(5)
                while !fake.streamCancelled && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(fake.streamCancelled)
                #expect(fake.streamFinishedAt == nil)
            }
        }
    }
}
