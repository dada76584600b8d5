import SidecarFuzzing
import Testing

@testable import SidecarPolicy

/// The canonical form's C fast path against the Swift implementation it stands in for.
@Suite struct CanonicalJSONFastPathTests {
    static let documents: [String] = [
        #"{"model":"gpt-4o","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"temperature":0.2}"#,
        #" { "messages" : [ {"content":"h\u00e9 \/ \ud83d\ude00 \ud800 \u0001 \"q\" \\ \n\t","role":"user"} ] , "model":"m" } "#,
        #"{"b":1,"a":2,"b":3,"a":{"z":[],"y":{},"x":[1,{"k":"v","j":null}]},"c":[true,false,null]}"#,
        #"{"messages":[{"role":"user","content":"first"},{"role":"assistant","content":"a"},{"role":"user","content":[{"type":"text","text":"second"}]}],"stream":true,"stream_options":{"include_usage":true}}"#,
        #"{"messages":[{"role":"user","content":"a","role":"assistant"},{"role":"user"}],"user":"u1","n":2}"#,
        #"{"prompt":"Complete this","max_tokens":16,"temperature":0.70,"n":1.0,"seed":123456789012345}"#,
        #"{"prompt":["a","b"],"messages":{"role":"user"}}"#,
        #"{"messages":[1,"x",{"role":"user","content":"c"},[{"role":"user"}]],"metadata":{"k":"v"},"store":false}"#,
        #"{"x":-0,"y":-0.000,"z":2.50,"w":100.0,"v":0.0001,"u":123456789.123456,"t":-12.5e0}"#,
        #"{"":1,"a\u0000b":2}"#,
        #"{"x":1.}"#,
        #"{"x":01}"#,
        #"{"x":"\q"}"#,
        "{\"x\":\"tab\tin\"}",  // a raw control character
        #"{"a":1,}"#,
        #"{"a" 1}"#,
        #"{"a":[1 2]}"#,
        #"{}"#,
        #"{"messages":[]}"#,
    ]

    @Test func theFastPathAgreesWithTheSwiftOne() throws {
        for document in Self.documents {
            try CanonicalJSONCheck.checkPathsAgree(Array(document.utf8))
        }
        // The common request shape is taken by the fast path (it is not always giving up).
        let request = Array(Self.documents[0].utf8)
        let fast = request.withUnsafeBufferPointer { CanonicalJSON.canonicalizeInC($0, maskingPrompt: true) }
        #expect(fast?.maskedPrompt == true)
        #expect(fast.map { String(decoding: $0.prompt, as: UTF8.self) } == #""Hi""#)
        #expect(fast?.temperature == 0.2)
    }

    /// What the fast path does not handle goes to the Swift implementation, which gives the answer.
    @Test func whatTheFastPathLeavesTheSwiftOneReads() throws {
        let left = [
            #"{"k\u0065y":1}"#,  // an escaped key
            #"{"x":1.5e3}"#,  // an exponent
            #"{"x":1234567890123456}"#,  // an integer past 15 digits
            #"{"x":0.00001}"#,  // below 1e-4
            #"{"x":0.1234567890123456}"#,  // past 15 significant digits
            #"{"messages":[{"role":"us\u0065r","content":"c"}]}"#,  // an escaped role
            #"{"a":"# + String(repeating: "[", count: 40) + String(repeating: "]", count: 40) + "}",
        ]
        for document in left {
            let bytes = Array(document.utf8)
            let fast = bytes.withUnsafeBufferPointer { CanonicalJSON.canonicalizeInC($0, maskingPrompt: true) }
            #expect(fast == nil, "\(document)")
            let reference = bytes.withUnsafeBufferPointer {
                CanonicalJSON.canonicalizeInSwift($0, maskingPrompt: true)
            }
            #expect(reference != nil, "\(document)")
            #expect(CanonicalJSON.canonicalize(bytes, maskingPrompt: true) == reference, "\(document)")
        }
    }

    /// Every place in a string for an escape, and objects past the members kept on the stack.
    @Test func escapesAnywhereAndLargeObjectsAgree() throws {
        for length in 1...40 {
            for place in 0..<length {
                var text = Array(repeating: "a", count: length)
                text[place] = #"\n"#
                try CanonicalJSONCheck.checkPathsAgree(Array(#"{"x":"\#(text.joined())"}"#.utf8))
            }
        }
        // Each of 300 keys twice, shuffled: sorted by merging, the later of each pair kept.
        let members = (0..<600).map { #""k\#(($0 * 7919) % 300)":\#($0)"# }.joined(separator: ",")
        let many = Array("{\(members),\"messages\":[\(String(repeating: "{\"role\":\"user\"},", count: 200))1]}".utf8)
        try CanonicalJSONCheck.checkPathsAgree(many)
        let fast = try #require(many.withUnsafeBufferPointer { CanonicalJSON.canonicalizeInC($0) })
        let text = String(decoding: fast.context, as: UTF8.self)
        #expect(text.hasPrefix(#"{"k0":300,"k1":"#))
        #expect(text.contains(#""k299":"#) && !text.contains(#""k0":0,"#))
    }

    /// Many members with escaped keys (the Swift path): sorted, as the same keys unescaped are.
    @Test func manyEscapedKeysSortLikeTheirPlainSpelling() throws {
        let count = 2_000
        let escaped = (0..<count).map { #""k0\#(count - $0)":\#($0)"# }.joined(separator: ",")
        let plain = (0..<count).map { #""k0\#(count - $0)":\#($0)"# }.joined(separator: ",")
        let a = try #require(CanonicalJSON.canonicalize(Array("{\(escaped)}".utf8)))
        let b = try #require(CanonicalJSON.canonicalize(Array("{\(plain)}".utf8)))
        #expect(a == b)
        #expect(String(decoding: a.context, as: UTF8.self).hasPrefix(#"{"k01":1999,"k010":1990,"#))
    }
}
