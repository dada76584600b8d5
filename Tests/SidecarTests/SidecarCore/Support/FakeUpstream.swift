import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization

/// A fake OpenAI-compatible upstream: JSON and SSE answers with `usage`, slow drips, scripted
/// statuses, and a record of what it received and when it finished.
///
/// Switches, by request header: `x-fake-status: N` answers N with an OpenAI error body;
/// `x-fake-chunk-delay-ms: N` waits N ms between SSE chunks; `x-fake-abort-after: N` drops the
/// connection after N chunks; `x-fake-hang-ms: N` waits N ms before answering.
final class FakeUpstream: Sendable {
    struct Received: Sendable {
        var path: String
        var headers: HTTPFields
        var body: ByteBuffer
        var json: [String: Any]? {
            try? JSONSerialization.jsonObject(with: Data(self.body.readableBytesView)) as? [String: Any]
        }
    }

    static let promptTokens = 1234
    static let completionTokens = 567

    private let state = Mutex<
        (requests: [Received], streamFinishedAt: ContinuousClock.Instant?, streamCancelled: Bool)
    >(
        ([], nil, false)
    )

    /// Statuses answered to the next chat requests, in order; then normal answers.
    private let script = Mutex<[(status: Int, retryAfter: String?)]>([])
    /// Chat requests answered so far (scripted or not).
    var chatCount: Int { self.state.withLock { $0.requests.filter { $0.path.hasPrefix("/v1/chat") }.count } }

    /// Streams that send their head and then drop the connection before any chunk.
    private let abortingStreams = Mutex<Int>(0)

    func abortNextStreamsBeforeFirstChunk(_ count: Int) {
        self.abortingStreams.withLock { $0 = count }
    }

    func script(_ statuses: [Int], retryAfter: String? = nil) {
        self.script.withLock { $0 = statuses.map { ($0, retryAfter) } }
    }

    var requests: [Received] { self.state.withLock { $0.requests } }
    var lastRequest: Received? { self.requests.last }
    var streamFinishedAt: ContinuousClock.Instant? { self.state.withLock { $0.streamFinishedAt } }
    var streamCancelled: Bool { self.state.withLock { $0.streamCancelled } }

    /// Runs the fake on 127.0.0.1, port 0, for the duration of `body`.
    static func run<Value: Sendable>(_ body: @Sendable (FakeUpstream, Int) async throws -> Value) async throws -> Value
    {
        let fake = FakeUpstream()
        let app = Application(router: fake.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in
            guard let port = client.port else { throw CancellationError() }
            return try await body(fake, port)
        }
    }

    private func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/v1/models") { _, _ in
            Self.json(.ok, #"{"object":"list","data":[{"id":"fake-model","object":"model"}]}"#)
        }
        router.get("/api/tags") { request, _ in
            self.record(request, body: ByteBuffer())
            return Self.json(.ok, #"{"models":[{"name":"llama3.2:3b"}]}"#)
        }
        router.get("/v1/files") { request, _ in
            self.record(request, body: ByteBuffer())
            return Self.json(.ok, #"{"object":"list","data":[]}"#)
        }
        router.post("/v1/chat/completions") { request, _ in try await self.chat(request) }
        router.post("/v1/completions") { request, _ in
            let body = try await self.record(request)
            if let failure = Self.scriptedFailure(request) { return failure }
            let model = Self.model(in: body)
            return Self.json(
                .ok,
                #"{"id":"cmpl-1","object":"text_completion","model":"\#(model)","choices":[{"index":0,"text":"hi","finish_reason":"stop"}],"usage":{"prompt_tokens":\#(Self.promptTokens),"completion_tokens":\#(Self.completionTokens),"total_tokens":\#(Self.promptTokens + Self.completionTokens)}}"#
            )
        }
        router.post("/v1/embeddings") { request, _ in
            let body = try await self.record(request)
            let model = Self.model(in: body)
            return Self.json(
                .ok,
                #"{"object":"list","model":"\#(model)","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"usage":{"prompt_tokens":1000,"total_tokens":1000}}"#
            )
        }
        return router
    }

    private func chat(_ request: Request) async throws -> Response {
        let body = try await self.record(request)
        if let failure = Self.scriptedFailure(request) { return failure }
        let scripted = self.script.withLock { $0.isEmpty ? nil : $0.removeFirst() }
        if let scripted {
            var response = Self.json(
                HTTPResponse.Status(code: scripted.status),
                #"{"error":{"message":"scripted failure \#(scripted.status)","type":"server_error","code":null}}"#
            )
            if let retryAfter = scripted.retryAfter { response.headers[.retryAfter] = retryAfter }
            return response
        }
        if let hang = request.headers[HTTPField.Name("x-fake-hang-ms")!].flatMap(Int.init) {
            try await Task.sleep(for: .milliseconds(hang))
        }
        let received = Received(path: "", headers: request.headers, body: body)
        let model = Self.model(in: body)
        let json = received.json ?? [:]
        guard json["stream"] as? Bool == true else {
            return Self.json(
                .ok,
                #"{"id":"c-1","object":"chat.completion","model":"\#(model)","choices":[{"index":0,"message":{"role":"assistant","content":"answer"},"finish_reason":"stop"}],"usage":{"prompt_tokens":\#(Self.promptTokens),"completion_tokens":\#(Self.completionTokens),"total_tokens":\#(Self.promptTokens + Self.completionTokens)}}"#
            )
        }
        let includeUsage = (json["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true
        let delay = request.headers[HTTPField.Name("x-fake-chunk-delay-ms")!].flatMap(Int.init) ?? 0
        let chunkCount = request.headers[HTTPField.Name("x-fake-chunks")!].flatMap(Int.init) ?? 4
        let abortEarly = self.abortingStreams.withLock { count -> Bool in
            guard count > 0 else { return false }
            count -= 1
            return true
        }
        let abortAfter = abortEarly ? 0 : request.headers[HTTPField.Name("x-fake-abort-after")!].flatMap(Int.init)
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        return Response(
            status: .ok,
            headers: headers,
            body: ResponseBody { writer in
                do {
                    for index in 0..<chunkCount {
                        if index == abortAfter { throw CancellationError() }
                        let chunk =
                            #"data: {"id":"c-1","object":"chat.completion.chunk","model":"\#(model)","choices":[{"index":0,"delta":{"content":"part\#(index) "},"finish_reason":null}]}"#
                            + "\n\n"
                        try await writer.write(ByteBuffer(string: chunk))
                        if delay > 0 { try await Task.sleep(for: .milliseconds(delay)) }
                    }
                    if includeUsage {
                        try await writer.write(
                            ByteBuffer(
                                string:
                                    #"data: {"id":"c-1","object":"chat.completion.chunk","model":"\#(model)","choices":[],"usage":{"prompt_tokens":\#(Self.promptTokens),"completion_tokens":\#(Self.completionTokens),"total_tokens":\#(Self.promptTokens + Self.completionTokens)}}"#
                                    + "\n\n"
                            )
                        )
                    }
                    try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                    try await writer.finish(nil)
                    self.state.withLock { $0.streamFinishedAt = .now }
                } catch {
                    self.state.withLock { $0.streamCancelled = true }
                    throw error
                }
            }
        )
    }

    @discardableResult
    private func record(_ request: Request) async throws -> ByteBuffer {
        let body = try await request.body.collect(upTo: 1 << 24)
        self.record(request, body: body)
        return body
    }

    private func record(_ request: Request, body: ByteBuffer) {
        let received = Received(path: request.uri.description, headers: request.headers, body: body)
        self.state.withLock { $0.requests.append(received) }
    }

    private static func scriptedFailure(_ request: Request) -> Response? {
        guard let status = request.headers[HTTPField.Name("x-fake-status")!].flatMap(Int.init) else { return nil }
        return Self.json(
            HTTPResponse.Status(code: status),
            #"{"error":{"message":"scripted failure \#(status)","type":"server_error","code":null}}"#
        )
    }

    private static func model(in body: ByteBuffer) -> String {
        let json = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        return json?["model"] as? String ?? "none"
    }

    private static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
