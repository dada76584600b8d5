import NIOCore
import SidecarFuzzing
import SidecarOpenAI
import Testing

/// The `openai-request` and `openai-request-gen` fuzz targets' invariants on seeded inputs
/// (scripts/fuzz.sh runs them under libFuzzer), and the inputs they found, replayed.
struct RequestBodyRewriterFuzzTests {
    @Test func seededBodiesDecodeAndRewriteConsistently() {
        FuzzProperty.check(.openAIRequest, count: 3000, seed: 2)
    }

    @Test func generatedRequestsDecodeAndRewriteConsistently() {
        FuzzProperty.check(.openAIRequestGenerated, count: 3000, seed: 3)
    }

    /// Both `model` and `stream_options` inserted into `{}`: no comma between them.
    @Test func twoInsertedMembersAreSeparated() {
        FuzzProperty.replay(.openAIRequest, Array("{}".utf8))
    }

    /// `JSONDecoder` read the first `model`, the rewrite and the upstream the last.
    @Test func aRepeatedModelIsRefused() {
        let repeated = [
            #"{"model":"a","mod\u0065l":"b"}"#: "model",
            #"{"messages":[{"role":"user"},{"role":"user","content":"a","content":"b"}]}"#: "messages[1].content",
            #"{"messages":[{"content":[{"type":"text","text":"a","text":"b"}]}]}"#: "messages[0].content[0].text",
            #"{"stream_options":{"include_usage":true,"include_usage":false}}"#: "stream_options.include_usage",
            #"{"x":{"model":1,"model":2},"metadata":{"a":1,"a":2}}"#: nil,
        ]
        for (body, member) in repeated {
            #expect(OpenAIRequestParser.repeatedMember(in: ByteBuffer(string: body)) == member, "\(body)")
        }
        FuzzProperty.replay(.openAIRequest, Array(#"{"model":"a","max_tokens":1.0,"model":"b"}"#.utf8))
        FuzzProperty.replay(
            .openAIRequest,
            Array(#"{"messages":[{"role":"user","content":"a","content":"b"}],"max_tokens":1.0}"#.utf8)
        )
    }

    /// An escaped `model` key (the parser declined the body for `1.0`): the rewrite did not see
    /// it and inserted a second `model`, which the upstream read as the first one's value.
    @Test func anEscapedModelKeyIsRewritten() {
        FuzzProperty.replay(.openAIRequest, Array(#"{"mod\u0065l":"a","max_tokens":1.0}"#.utf8))
    }
}
