import Foundation
import NIOCore
import Testing

@testable import SidecarCore
@testable import SidecarOpenAI

/// The single-pass parser must agree with `JSONDecoder` whenever it answers, and answer for
/// the request shapes clients actually send.
struct OpenAIRequestParserTests {
    static let valid: [String] = [
        #"{"model":"gpt-4o","messages":[{"role":"user","content":"What is 2+2?"}]}"#,
        #"{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"temperature":0.2,"stream":true,"stream_options":{"include_usage":true}}"#,
        #" { "model" : "auto" , "messages" : [ { "role" : "user" , "content" : [ { "type" : "text" , "text" : "Describe" } , { "type" : "image_url" , "image_url" : { "url" : "data:x" } } ] } ] } "#,
        #"{"model":"m","messages":[{"role":"user","content":"caf\u00e9 \ud83d\ude00 \n\t\"q\" \\ \/ é 日本"}],"max_tokens":128}"#,
        #"{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"1"}]}],"tools":[{"type":"function"},{"type":"function"}],"functions":[{}],"max_completion_tokens":-0}"#,
        #"{"model":"m","prompt":"Say hi","max_tokens":16}"#,
        #"{"model":"m","prompt":["a","b"],"stream":false}"#,
        #"{"model":"m","prompt":[1,2,3]}"#,
        #"{"model":"m","prompt":[[1,2],[3]]}"#,
        #"{"model":"m","prompt":["a",1]}"#,
        #"{"model":"m","prompt":7}"#,
        #"{"model":null,"stream":null,"stream_options":null,"messages":null,"prompt":null,"tools":null,"max_tokens":null}"#,
        #"{"model":"m","stream_options":{"include_usage":false,"other":[1,{"a":[true,false,null]}]}}"#,
        #"{"input":["x","y"],"model":"text-embedding-3-small","encoding_format":"base64"}"#,
        #"{"model":"m","n":1e10,"x":-1.5E-3,"y":0.0,"z":[],"w":{}}"#,
        #"{}"#,
    ]

    static let invalid: [String] = [
        "", " ", "[]", "null", "\"x\"", "{", "}", #"{"model":"m""#, #"{"model":"m",}"#, #"{"model" "m"}"#,
        #"{"model":'m'}"#, #"{"model":"m"} x"#, #"{"model":"m"}{}"#, #"{"a":01}"#, #"{"a":1.}"#, #"{"a":.5}"#,
        #"{"a":-}"#, #"{"a":1e}"#, #"{"a":tru}"#, #"{"a":nul}"#, #"{"a":"\x"}"#, #"{"a":"\u12"}"#,
        #"{"a":"\ud800"}"#, #"{"a":"\udc00"}"#, "{\"a\":\"tab\there\"}", #"{"a":[1,]}"#, #"{"a":[,1]}"#,
        #"{"model":5}"#, #"{"stream":"yes"}"#, #"{"stream_options":{"include_usage":1}}"#, #"{"stream_options":[]}"#,
        #"{"messages":{}}"#, #"{"messages":[{"content":"no role"}]}"#, #"{"messages":[{"role":1}]}"#,
        #"{"messages":[{"role":"user","content":5}]}"#, #"{"messages":[{"role":"user","content":[{"text":5}]}]}"#,
        #"{"messages":[{"role":"user","content":[1]}]}"#, #"{"tools":{}}"#, #"{"max_tokens":"5"}"#,
        #"{"max_tokens":1.5}"#, #"{"max_tokens":99999999999999999999}"#, #"{"model":"a","model":"b"}"#,
    ]

    static func decoded(_ text: String) -> OpenAIRequestView? {
        try? JSONDecoder().decode(OpenAIRequestView.self, from: Data(text.utf8))
    }

    @Test(arguments: valid)
    func agreesWithJSONDecoderOnValidRequests(_ text: String) throws {
        let parsed = try #require(OpenAIRequestParser.parse(ByteBuffer(string: text)))
        let reference = try #require(Self.decoded(text))
        #expect(parsed == reference)
    }

    @Test(arguments: invalid)
    func declinesWhatItCannotReadExactly(_ text: String) {
        let parsed = OpenAIRequestParser.parse(ByteBuffer(string: text))
        if let parsed {
            // Declining is always allowed; answering means agreeing with JSONDecoder.
            #expect(parsed == Self.decoded(text))
        } else {
            #expect(parsed == nil)
        }
        // Most of these are errors for JSONDecoder too, so they must be declined.
        if Self.decoded(text) == nil { #expect(parsed == nil) }
    }

    @Test func randomCorruptionsNeverDisagree() {
        var generator = SystemRandomNumberGenerator()
        var answered = 0
        for _ in 0..<4000 {
            var bytes = Array(Self.valid.randomElement(using: &generator)?.utf8 ?? "{}".utf8)
            switch Int.random(in: 0..<3, using: &generator) {
            case 0 where !bytes.isEmpty:
                bytes.removeSubrange(Int.random(in: 0..<bytes.count, using: &generator)...)
            case 1 where !bytes.isEmpty:
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            default:
                let position = Int.random(in: 0...bytes.count, using: &generator)
                bytes.insert(Array(#"{}[],:"\ 0-e.tfn"#.utf8).randomElement(using: &generator) ?? 0, at: position)
            }
            let parsed = OpenAIRequestParser.parse(ByteBuffer(bytes: bytes))
            let reference = try? JSONDecoder().decode(OpenAIRequestView.self, from: Data(bytes))
            if let parsed {
                answered += 1
                #expect(parsed == reference, "disagreement on \(String(decoding: bytes, as: UTF8.self))")
            }
        }
        #expect(answered > 0)
    }

    @Test(arguments: valid)
    func layoutRewriteEqualsScanningRewrite(_ text: String) throws {
        let body = ByteBuffer(string: text)
        let layout = try #require(OpenAIRequestParser.parseWithLayout(body)?.layout)
        for (model, includeUsage) in [("small-local", false), ("gpt-4o", true), (#"we"ird\"#, true)]
            as [(String?, Bool)]
            + [(nil, true), (nil, false)]
        {
            let scanned = RequestBodyRewriter.rewrite(body, model: model, includeUsage: includeUsage)
            let fromLayout = RequestBodyRewriter.rewrite(body, layout: layout, model: model, includeUsage: includeUsage)
            #expect(scanned == fromLayout, "\(text) model=\(model ?? "nil") usage=\(includeUsage)")
        }
    }
}
