import NIOCore
import SidecarCore
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

    /// A key spelled with a leading U+FEFF is a key of its own: the rewrite keeps it and adds
    /// `model`. (Foundation's reader drops the U+FEFF and merged the two; the check no longer
    /// judges such bodies by Foundation's tree.)
    @Test func aKeyWithAByteOrderMarkIsNotTheModel() throws {
        FuzzProperty.replay(.openAIRequest, FuzzProperty.seed(.openAIRequest, "found-bom-key"))
        let body = ByteBuffer(string: "{\"\u{FEFF}model\":\"gpt-4o\",\"messages\":[]}")
        let (view, _) = try RequestDecoder.decodeWithLayout(body)
        #expect(view.model == nil)
        let rewritten = try #require(RequestBodyRewriter.rewrite(body, model: "llama3.2:3b", includeUsage: false))
        let text = String(buffer: rewritten)
        #expect(text.contains("\"\u{FEFF}model\":\"gpt-4o\""))
        #expect(text.contains("\"model\":\"llama3.2:3b\""))
    }

    /// `JSONDecoder` does not check members it does not read: a bad escape (which made the
    /// rewrite's scan lose the string's end), a leading zero, a trailing comma, a raw control
    /// character or bad UTF-8 passed the decode stage and failed in the rewrite or upstream.
    @Test func theDecodeStageLetsThroughOnlyValidJSON() {
        // As found: {"model":"m","mes\u{7F}ages":[{..., "cont2\u{BB}\u{BF}":"caf\u00 \\"\/ ..."}],...}
        let found: [UInt8] = [
            0x7B, 0x22, 0x6D, 0x6F, 0x64, 0x65, 0x6C, 0x22, 0x3A, 0x22, 0x6D, 0x22, 0x2C, 0x22,
            0x6D, 0x65, 0x73, 0x7F, 0x61, 0x67, 0x65, 0x73, 0x22, 0x3A, 0x5B, 0x7B, 0x22, 0x32,
            0x6F, 0x6C, 0x65, 0x22, 0x3A, 0x22, 0x75, 0x73, 0x65, 0x72, 0x22, 0x2C, 0x22, 0x63,
            0x6F, 0x6E, 0x74, 0x32, 0xBB, 0xBF, 0x22, 0x3A, 0x22, 0x63, 0x61, 0x66, 0x5C, 0x75,
            0x30, 0x30, 0x20, 0x5C, 0x5C, 0x22, 0x5C, 0x2F, 0x20, 0xC3, 0xA9, 0xE6, 0x20, 0x97,
            0xA5, 0xE6, 0x9C, 0xAC, 0x22, 0x7D, 0x5D, 0x2C, 0x22, 0x6D, 0x61, 0x77, 0x78, 0x5F,
            0x74, 0x6F, 0x6B, 0x65, 0x6E, 0x73, 0x22, 0x3A, 0x31, 0x32, 0x38, 0x7D,
        ]
        FuzzProperty.replay(.openAIRequest, found)
        // A generated request: repeated `model`s after a member holding -00.0 (a writer bug since).
        FuzzProperty.replay(
            .openAIRequestGenerated,
            [0x2D, 0, 0] + [UInt8](repeating: 0x0F, count: 21) + [0, 0, 0, 0, 0x0F, 0x65, 0xCC, 0x81, 0xE6]
                + [UInt8](repeating: 0x0F, count: 20) + [0xFE] + [UInt8](repeating: 0xFF, count: 7) + [0x0F]
        )
        let invalid = [
            #"{"model":"a","max_tokens":1.0,"x":1,}"#, #"{"model":"a","max_tokens":1.0,"x":-00.0}"#,
            #"{"model":"a","max_tokens":1.0,"x":"\u00 \\"\/"}"#, "{\"model\":\"a\",\"max_tokens\":1.0,\"x\":\"\u{1}\"}",
        ]
        for body in invalid {
            #expect(throws: (any Error).self, "\(body)") {
                try RequestDecoder.decodeWithLayout(ByteBuffer(string: body))
            }
        }
        #expect(throws: Never.self) {
            try RequestDecoder.decodeWithLayout(ByteBuffer(string: #"{"model":"a","max_tokens":1.0}"#))
        }
    }
}
