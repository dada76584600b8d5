import NIOCore
import Testing

@testable import SidecarCore
@testable import SidecarOpenAI

@Suite struct RequestBodyRewriterTests {
    func rewrite(_ json: String, model: String?, includeUsage: Bool = false) -> String? {
        RequestBodyRewriter.rewrite(ByteBuffer(string: json), model: model, includeUsage: includeUsage).map {
            String(buffer: $0)
        }
    }

    @Test func replacesOnlyTheModelValueKeepingEveryOtherByte() {
        let body =
            #"{ "model" : "gpt-4o", "messages":[{"role":"user","content":"{\"model\":\"x\"}"}], "x_custom": {"model": 1} }"#
        #expect(
            rewrite(body, model: "llama3.2:3b")
                == #"{ "model" : "llama3.2:3b", "messages":[{"role":"user","content":"{\"model\":\"x\"}"}], "x_custom": {"model": 1} }"#
        )
    }

    @Test func insertsModelWhenAbsent() {
        #expect(rewrite(#"{"messages":[]}"#, model: "m") == #"{"model":"m","messages":[]}"#)
        #expect(rewrite(#"{}"#, model: "m") == #"{"model":"m"}"#)
    }

    @Test func escapesTheModelName() {
        #expect(rewrite(#"{"model":"a"}"#, model: "we\"ird\\") == #"{"model":"we\"ird\\"}"#)
    }

    @Test func addsStreamOptionsForUsage() {
        #expect(
            rewrite(#"{"model":"a","stream":true}"#, model: nil, includeUsage: true)
                == #"{"stream_options":{"include_usage":true},"model":"a","stream":true}"#
        )
    }

    @Test func forcesIncludeUsageInsideExistingStreamOptions() {
        #expect(
            rewrite(#"{"stream_options":{"include_usage":false,"x":1}}"#, model: nil, includeUsage: true)
                == #"{"stream_options":{"include_usage":true,"x":1}}"#
        )
        #expect(
            rewrite(#"{"stream_options":{"x":1}}"#, model: nil, includeUsage: true)
                == #"{"stream_options":{"include_usage":true,"x":1}}"#
        )
        #expect(
            rewrite(#"{"stream_options":null}"#, model: nil, includeUsage: true)
                == #"{"stream_options":{"include_usage":true}}"#
        )
    }

    @Test func nonObjectsAreRejected() {
        #expect(rewrite("[1,2]", model: "m") == nil)
        #expect(rewrite("\"s\"", model: "m") == nil)
    }
}

@Suite struct OpenAIUsageProbeTests {
    func probe(_ json: String) -> OpenAIUsageProbe? {
        OpenAIUsageProbe(ByteBuffer(string: json))
    }

    @Test func readsUsageFromAWholeResponse() {
        let body =
            #"{"id":"x","choices":[{"index":0}],"usage":{"prompt_tokens":1234, "completion_tokens" : 567,"total_tokens":1801}}"#
        #expect(probe(body)?.usage == OpenAIUsage(promptTokens: 1234, completionTokens: 567))
        #expect(probe(body)?.isUsageOnlyChunk == false)
    }

    @Test func recognisesTheUsageOnlyStreamChunk() {
        let chunk = #"{"choices":[ ],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#
        #expect(probe(chunk)?.isUsageOnlyChunk == true)
        let usage = #""usage":{"prompt_tokens":3,"completion_tokens":4}"#
        #expect(probe("{\"choices\":[\n\t],\(usage)}")?.isUsageOnlyChunk == true)
        #expect(probe("{\"choices\":null,\(usage)}")?.isUsageOnlyChunk == true)
        #expect(probe("{\"choices\":[ \n{\"index\":0}],\(usage)}")?.isUsageOnlyChunk == false)
        #expect(probe("{\"choices\":[0],\(usage)}")?.hasChoices == true)
    }

    @Test func embeddingsUsageHasNoCompletionTokens() {
        #expect(
            probe(#"{"usage":{"prompt_tokens":10,"total_tokens":10}}"#)?.usage
                == .init(promptTokens: 10, completionTokens: 0)
        )
    }

    @Test func nullOrMissingUsageIsNil() {
        #expect(probe(#"{"usage":null,"choices":[]}"#)?.usage == nil)
        #expect(probe(#"{"choices":[{"delta":{}}]}"#)?.usage == nil)
        #expect(probe("not json") == nil)
    }

    @Test func nonIntegerCountsAreIgnored() {
        #expect(
            probe(#"{"usage":{"prompt_tokens":"12","completion_tokens":99999999999999999999999}}"#)?.usage
                == .init(promptTokens: 0, completionTokens: 0)
        )
    }
}
