import Foundation
import NIOCore
import Testing

@testable import SidecarCore
@testable import SidecarOpenAI
@testable import SidecarPolicy

struct StreamRelayTests {
    @Test func mentionsUsageAgreesWithASubstringSearch() {
        var generator = SystemRandomNumberGenerator()
        let pieces = ["\"usage\"", "\"usag", "usage\"", "\"", "u", "sage", "{", "é", " ", "\"use\"", "x"]
        for _ in 0..<3000 {
            let count = Int.random(in: 0...8, using: &generator)
            let text = (0..<count).map { _ in pieces.randomElement(using: &generator) ?? "" }.joined()
            #expect(StreamRelay.mentionsUsage(text) == text.contains("\"usage\""), "\(text)")
        }
    }

    @Test func theUsageOnlyChunkIsReadAndDroppedWhenTheSidecarAskedForIt() {
        var relay = StreamRelay(dropUsageChunk: true)
        let stream =
            #"data: {"choices":[{"delta":{"content":"hi"}}]}"# + "\n\n"
            + #"data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"# + "\n\n"
            + "data: [DONE]\n\n"
        let out = relay.feed(ByteBuffer(string: stream))
        #expect(String(buffer: out) == #"data: {"choices":[{"delta":{"content":"hi"}}]}"# + "\n\ndata: [DONE]\n\n")
        #expect(relay.usage == OpenAIUsage(promptTokens: 3, completionTokens: 4))
        #expect(relay.sawDone)
    }

    @Test func generatedTextIsCountedAsItPasses() {
        var relay = StreamRelay(dropUsageChunk: true)
        _ = relay.feed(
            ByteBuffer(string: #"data: {"choices":[{"delta":{"role":"assistant","content":"Hello"}}]}"# + "\n\n")
        )
        // Python's json.dumps puts a space after the colon (llama.cpp's server).
        _ = relay.feed(ByteBuffer(string: #"data: {"choices": [{"delta": {"content": " world\n"}}]}"# + "\n\n"))
        #expect(relay.generatedBytes == 12)
        let (usage, estimated) = relay.usage(estimatingPrompt: { 20 })
        #expect(estimated)
        #expect(usage == OpenAIUsage(promptTokens: 20, completionTokens: 3))
    }

    @Test func reportedUsageIsNeverReplacedByAnEstimate() {
        var relay = StreamRelay(dropUsageChunk: true)
        _ = relay.feed(
            ByteBuffer(string: #"data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"# + "\n\n")
        )
        let (usage, estimated) = relay.usage(estimatingPrompt: {
            Issue.record("estimated although usage was reported")
            return 0
        })
        #expect(!estimated)
        #expect(usage == OpenAIUsage(promptTokens: 3, completionTokens: 4))
    }

    @Test func aClientThatAskedForUsageGetsAnEstimatedChunkWhenTheUpstreamSendsNone() throws {
        let fill = StreamRelay.UsageFill(
            id: "chatcmpl-1",
            object: "chat.completion.chunk",
            model: "m",
            promptTokens: 10,
            created: 1_700_000_000
        )
        var relay = StreamRelay(dropUsageChunk: false, usageFill: fill)
        let out = relay.feed(
            ByteBuffer(string: #"data: {"choices":[{"delta":{"content":"12345678"}}]}"# + "\n\ndata: [DONE]\n\n")
        )
        let events = String(buffer: out).components(separatedBy: "\n\n").filter { !$0.isEmpty }
        #expect(events.count == 3)
        #expect(events.last == "data: [DONE]")
        let chunk = try #require(events.dropFirst().first).dropFirst("data: ".count)
        let json = try JSONSerialization.jsonObject(with: Data(chunk.utf8)) as? [String: Any]
        let usage = json?["usage"] as? [String: Int]
        #expect(usage == ["prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12])
        #expect(json?["model"] as? String == "m")
        #expect(json?["x_sidecar_usage_estimated"] as? Bool == true)
    }

    @Test func noChunkIsAddedWhenTheUpstreamReportedUsage() {
        let fill = StreamRelay.UsageFill(
            id: "c",
            object: "chat.completion.chunk",
            model: "m",
            promptTokens: 1,
            created: 0
        )
        var relay = StreamRelay(dropUsageChunk: false, usageFill: fill)
        let stream =
            #"data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"# + "\n\ndata: [DONE]\n\n"
        #expect(String(buffer: relay.feed(ByteBuffer(string: stream))) == stream)
    }

    /// An upstream that never ends an event: past the limit the stream is passed on as it comes
    /// (every byte, in order), nothing more is held, and nothing is kept for the cache.
    @Test func anEventPastTheLimitIsPassedOnUnheld() {
        var relay = StreamRelay(dropUsageChunk: true, captureLimit: 1 << 20, eventLimit: 100)
        let first = #"data: {"choices":[{"delta":{"content":"hi"}}]}"# + "\n\n"
        var sent = String(buffer: relay.feed(ByteBuffer(string: first)))
        #expect(sent == first)
        #expect(relay.captured?.count == 1)
        var upstream = first
        for index in 0..<50 {
            let piece = "data: " + String(repeating: "x", count: 7) + "\(index)"
            upstream += piece
            sent += String(buffer: relay.feed(ByteBuffer(string: piece)))
        }
        #expect(relay.passingThrough)
        #expect(relay.captured == nil)
        #expect(relay.finish() == nil)
        let tail = "\n\ndata: [DONE]\n\n"
        upstream += tail
        sent += String(buffer: relay.feed(ByteBuffer(string: tail)))
        #expect(sent == upstream)
    }

    /// An upstream cut inside an event: the half event is dropped and the error event stands on
    /// its own (glued to the half event, the client would get neither as valid JSON).
    @Test func aFailureInsideAnEventEndsWithACleanErrorEvent() {
        var relay = StreamRelay(dropUsageChunk: true)
        let first = #"data: {"choices":[{"delta":{"content":"hi"}}]}"# + "\n\n"
        #expect(String(buffer: relay.feed(ByteBuffer(string: first + #"data: {"choi"#))) == first)
        let end = String(buffer: relay.finish(failure: (message: "cut", code: "upstream_cut")) ?? ByteBuffer())
        #expect(end.hasPrefix("data: {"))
        #expect(end.contains(#""code":"upstream_cut""#))
        #expect(end.hasSuffix("\n\ndata: [DONE]\n\n"))
        #expect(!end.contains("choi"))
        // Without a failure the unterminated event is passed on as the upstream sent it.
        var plain = StreamRelay(dropUsageChunk: true)
        _ = plain.feed(ByteBuffer(string: first + #"data: {"choi"#))
        #expect(plain.finish().map { String(buffer: $0) } == #"data: {"choi"#)
    }

    /// Past the event limit the event's start already went out: a blank line ends it before the
    /// error event; after the upstream's own `[DONE]` a failure adds nothing.
    @Test func aFailureAfterPassingThroughEndsTheEventFirst() {
        var relay = StreamRelay(dropUsageChunk: true, eventLimit: 10)
        _ = relay.feed(ByteBuffer(string: "data: " + String(repeating: "x", count: 20)))
        #expect(relay.passingThrough)
        let end = String(buffer: relay.finish(failure: (message: "cut", code: "upstream_cut")) ?? ByteBuffer())
        #expect(end.hasPrefix("\n\ndata: {"))
        var done = StreamRelay(dropUsageChunk: true)
        _ = done.feed(ByteBuffer(string: "data: [DONE]\n\n"))
        #expect(done.finish(failure: (message: "cut", code: "upstream_cut")) == nil)
    }
}
