import NIOCore
import Testing

@testable import SidecarOpenAI

/// What a streamed completion's opening may hold back: only events that say nothing yet.
@Suite struct StreamPreludeTests {
    static let roleOnly =
        #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant"},"logprobs":null,"finish_reason":null}]}"#

    @Test(arguments: [
        // OpenAI, and the SDK test fake: the role alone.
        Self.roleOnly,
        // llama.cpp's server and Ollama: the role with empty content.
        #"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"model":"m"}"#,
        // OpenAI's newer framing: a refusal field, null.
        #"{"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        // Azure: empty choices and the prompt filter's results.
        #"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}"#,
        // The legacy completions endpoint: empty text.
        #"{"choices":[{"index":0,"text":"","logprobs":null,"finish_reason":null}]}"#,
        // White space anywhere.
        #" { "choices" : [ { "index" : 0 , "delta" : { "role" : "assistant" } } ] } "#,
    ])
    func eventsThatSayNothingAreAPrelude(_ data: String) {
        #expect(StreamPrelude.isPrelude(data))
    }

    @Test(arguments: [
        #"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"#,
        #"{"choices":[{"index":0,"delta":{"content":" "},"finish_reason":null}]}"#,
        #"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function"}]}}]}"#,
        #"{"choices":[{"index":0,"delta":{"role":"assistant","refusal":"I can't"}}]}"#,
        #"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        #"{"choices":[{"index":0,"delta":{"role":"assistant"},"logprobs":{"content":[]}}]}"#,
        #"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":0,"total_tokens":1}}"#,
        #"{"choices":[{"index":0,"text":"Hi","finish_reason":null}]}"#,
        #"{"error":{"message":"overloaded","type":"server_error"}}"#,
        // No `choices` at all, or not an object: nothing this type knows.
        #"{}"#,
        #"{"choices":{}}"#,
        "[DONE]",
        "",
        "not json",
        #"{"choices":[{"index":0,"delta":{"role":"assistant"}"#,
    ])
    func eventsThatSaySomethingOrAreUnknownEndIt(_ data: String) {
        #expect(!StreamPrelude.isPrelude(data))
    }

    @Test func holdsARoleOnlyOpeningSplitAnywhereUntilTheFirstContent() {
        let opening = "data: \(Self.roleOnly)\n\n"
        let content = #"data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}"# + "\n\n"
        let bytes = Array((opening + content).utf8)
        for split in 0...bytes.count {
            var prelude = StreamPrelude()
            let first = prelude.feed(ByteBuffer(bytes: bytes[..<split]))
            let second = prelude.feed(ByteBuffer(bytes: bytes[split...]))
            // Until the content event is complete nothing is committed; then it is.
            #expect(first == (split < bytes.count ? .hold : .commit), "split at \(split)")
            if split < bytes.count { #expect(second == .commit, "split at \(split)") }
        }
    }

    @Test func aCommentEndsThePreludeSinceTheClientMayBeWaitingForIt() {
        var prelude = StreamPrelude()
        #expect(prelude.feed(ByteBuffer(string: "data: \(Self.roleOnly)\n\n")) == .hold)
        #expect(prelude.feed(ByteBuffer(string: ": keep-alive\n\n")) == .commit)
    }

    @Test func aPreludeLongerThanTheLimitIsCommittedAnyway() {
        var prelude = StreamPrelude()
        let event = ByteBuffer(string: "data: \(Self.roleOnly)\n\n")
        var held = 0
        var verdict = StreamPrelude.Verdict.hold
        while verdict == .hold {
            verdict = prelude.feed(event)
            held += event.readableBytes
        }
        #expect(held > StreamPrelude.byteLimit)
        #expect(held <= StreamPrelude.byteLimit + event.readableBytes)
    }
}
