import Foundation
import Testing

@testable import SidecarPolicy

@Suite struct CanonicalJSONTests {
    func canonical(_ text: String, mask: Bool = false) -> CanonicalJSON.Result? {
        CanonicalJSON.canonicalize(Array(text.utf8), dropping: ["stream"], maskingPrompt: mask)
    }

    @Test func keyOrderWhiteSpaceEscapesAndNumberSpellingDoNotMatter() throws {
        let a = try #require(
            canonical(#"{"model":"m","temperature":1,"messages":[{"role":"user","content":"h\u00e9 /"}]}"#)
        )
        let b = try #require(
            canonical(#" { "messages" : [ {"content":"hé \/","role":"user"} ] , "temperature":1.0e0, "model":"m" } "#)
        )
        #expect(a == b)
        #expect(String(decoding: a.context, as: UTF8.self).contains(#""temperature":1"#))
    }

    /// Strings are scanned sixteen bytes at a time for escapes and control characters: one at
    /// any place, in a block or in the tail, must be found.
    @Test func anEscapeOrAControlCharacterIsFoundAtAnyPlaceInAString() throws {
        for length in 1...40 {
            for place in 0..<length {
                var escaped = Array(repeating: "a", count: length)
                var plain = escaped
                escaped[place] = #"\u0041"#
                plain[place] = "A"
                let a = try #require(canonical(#"{"x":"\#(escaped.joined())"}"#))
                let b = try #require(canonical(#"{"x":"\#(plain.joined())"}"#))
                #expect(a == b, "length \(length), escape at \(place)")
                var raw = Array(repeating: UInt8(ascii: "a"), count: length)
                raw[place] = 0x01
                #expect(CanonicalJSON.canonicalize(Array(#"{"x":""#.utf8) + raw + Array(#""}"#.utf8)) == nil)
            }
        }
    }

    @Test func numbersHaveOneSpelling() throws {
        func number(_ text: String) -> String? {
            canonical(#"{"x":\#(text)}"#).map { String(decoding: $0.context, as: UTF8.self) }
        }
        #expect(number("2.50") == #"{"x":2.5}"#)
        #expect(number("1.0") == #"{"x":1}"#)
        #expect(number("1e0") == #"{"x":1}"#)
        #expect(number("-0") == #"{"x":0}"#)
        #expect(number("-0.00") == #"{"x":0}"#)
        #expect(number("-1.20") == #"{"x":-1.2}"#)
        #expect(number("0.001") == #"{"x":0.001}"#)
        #expect(number("12") == #"{"x":12}"#)
        #expect(number("1.5e3") == #"{"x":1500}"#)
    }

    @Test func anythingThatChangesTheAnswerChangesTheForm() throws {
        let base = try #require(canonical(#"{"model":"m","temperature":0.7,"messages":[]}"#))
        #expect(canonical(#"{"model":"m","temperature":0.70,"messages":[]}"#) == base)
        #expect(canonical(#"{"model":"m","temperature":0.8,"messages":[]}"#) != base)
        #expect(canonical(#"{"model":"n","temperature":0.7,"messages":[]}"#) != base)
        #expect(canonical(#"{"model":"m","temperature":0.7,"messages":[],"seed":1}"#) != base)
        // `stream` changes the shape, not the answer: dropped.
        #expect(canonical(#"{"model":"m","temperature":0.7,"messages":[],"stream":true}"#) == base)
    }

    @Test func theLastUserMessageIsMaskedAndEverythingElseKept() throws {
        let first = try #require(
            canonical(
                #"{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi there"}]}"#,
                mask: true
            )
        )
        let second = try #require(
            canonical(
                #"{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello"}]}"#,
                mask: true
            )
        )
        let otherSystem = try #require(
            canonical(
                #"{"model":"m","messages":[{"role":"system","content":"be long"},{"role":"user","content":"hello"}]}"#,
                mask: true
            )
        )
        #expect(first.maskedPrompt && second.maskedPrompt)
        #expect(first.context == second.context)
        #expect(first.prompt != second.prompt)
        #expect(second.context != otherSystem.context)
        #expect(String(decoding: first.prompt, as: UTF8.self) == #""hi there""#)
    }

    /// `n` and `temperature` are read without a string in the common case; every spelling reads
    /// as `Double(String)` reads it, exactly.
    @Test func numbersReadAsDoubleReadsThem() {
        var random = SplitMix64(seed: 7)
        var spellings = [
            "0", "-0", "1", "2", "0.7", "1.0", "-1.25", "0.1", "0.30000000000000004", "9007199254740993",
            "9007199254740992", "900719925474099.9", "1e2", "1E-3", "2.5e+1", "0.0000000000000000000001",
            "0.00000000000000000000001", "123456789012345678901234567890", "-", "", "null", "\"1\"", "true", "1.5.2",
        ]
        for _ in 0..<2_000 {
            let whole = random.next() % 1_000_000
            let places = Int(random.next() % 18)
            let fraction = (0..<places).map { _ in String(random.next() % 10) }.joined()
            spellings.append((random.next() % 2 == 0 ? "-" : "") + "\(whole)" + (places > 0 ? "." + fraction : ""))
        }
        for spelling in spellings {
            let bytes = Array(spelling.utf8)
            let read = bytes.withUnsafeBufferPointer { CanonicalJSON.number($0) }
            let expected = Double(spelling)
            #expect(read?.bitPattern == expected?.bitPattern, "\(spelling)")
        }
    }

    @Test func invalidOrTooDeepDocumentsAreNotCached() {
        #expect(canonical(#"{"model":"m""#) == nil)
        #expect(canonical(#"[1,2]"#) == nil)
        #expect(canonical(#"{"a":tru}"#) == nil)
        #expect(canonical(#"{"a":1} x"#) == nil)
        let deep = #"{"a":"# + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}"
        #expect(canonical(deep) == nil)
    }

    @Test func theKeyHashesEveryPartWithItsLength() throws {
        let a = try #require(CacheKey(hashing: [Array("ab".utf8), Array("c".utf8)]))
        let b = try #require(CacheKey(hashing: [Array("a".utf8), Array("bc".utf8)]))
        #expect(a != b)
        #expect(CacheKey(hex: a.hex) == a)
        // SHA-256("abc") is the FIPS 180-2 test vector.
        // Parts fed one at a time, as bytes, strings or raw buffers, give the joined parts' key.
        var hasher = CacheKey.Hasher256()
        hasher.update(part: Array("ab".utf8))
        hasher.update(part: "c")
        hasher.update(part: "")
        Array("dé".utf8).withUnsafeBytes { hasher.update(part: $0) }
        let finished = hasher.finish()
        let streamed = try #require(finished)
        #expect(streamed == CacheKey(hashing: [Array("ab".utf8), Array("c".utf8), [], Array("dé".utf8)]))
        #expect(streamed != CacheKey(hashing: [Array("ab".utf8), Array("c".utf8), Array("dé".utf8)]))
        let digest = try #require(CacheKey.sha256(Array("abc".utf8)))
        #expect(CacheKey(digest: digest).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}

@Suite struct MemoryCacheStoreTests {
    func answer(_ text: String, expiresAt: Int64 = 1_000) -> StoredAnswer {
        StoredAnswer(body: .whole(Array(text.utf8)), model: "m", upstream: "u", cost: "0.01", expiresAt: expiresAt)
    }

    func key(_ n: Int) -> CacheKey { CacheKey(bytes: (UInt64(n), 0, 0, 0)) }

    @Test func theLeastRecentlyUsedEntryGoesFirst() {
        let store = MemoryCacheStore(limits: .init(maxEntries: 2, maxBytes: 1 << 20))
        store.set(key(1), answer("one"))
        store.set(key(2), answer("two"))
        #expect(store.get(key(1), now: 0) != nil)  // 1 is now the most recent
        store.set(key(3), answer("three"))
        #expect(store.get(key(2), now: 0) == nil)
        #expect(store.get(key(1), now: 0)?.body == .whole(Array("one".utf8)))
        #expect(store.get(key(3), now: 0) != nil)
        #expect(store.count == 2)
    }

    /// An alias finds its entry in whichever shard the entry lives, follows the entry when it
    /// is replaced, and finds nothing once the entry is evicted or expired.
    @Test func anAliasFindsItsEntryUntilTheEntryGoes() {
        let store = MemoryCacheStore(limits: .init(maxEntries: 1_024, maxBytes: 1 << 20))
        for n in 0..<16 {
            let key = key(n)
            let alias = CacheKey(bytes: (UInt64(1_000 + n), 0, 0, UInt64(n + 1)))  // another shard
            store.set(key, alias: alias, answer("answer \(n)"))
            #expect(store.get(alias, now: 0)?.body == .whole(Array("answer \(n)".utf8)))
            store.set(key, answer("newer \(n)"))
            #expect(store.get(alias, now: 0)?.body == .whole(Array("newer \(n)".utf8)))
            #expect(store.get(alias, now: 1_000) == nil)  // expired
        }
        #expect(store.count == 0)  // the expired entries were dropped when asked for
        let alias = CacheKey(bytes: (7, 7, 7, 7))
        store.set(key(0), alias: alias, answer("first"))
        // The entry's shard holds 1,024 / 16 = 64 entries: 64 newer ones in it evict it.
        for n in 1...64 { store.set(CacheKey(bytes: (UInt64(n), 0, 0, 16 * UInt64(n))), answer("filler")) }
        #expect(store.get(key(0), now: 0) == nil)
        #expect(store.get(alias, now: 0) == nil)
        #expect(store.count == 64)
    }

    /// An alias added after the entry (the response cache adds it on the first repeat) finds it;
    /// one for a key that holds nothing finds nothing.
    @Test func anAliasAddedLaterFindsItsEntry() {
        let store = MemoryCacheStore(limits: .init(maxEntries: 1_024, maxBytes: 1 << 20))
        store.set(key(1), answer("stored"))
        let alias = CacheKey(bytes: (9, 9, 9, 9))
        #expect(store.get(alias, now: 0) == nil)
        store.addAlias(alias, for: key(1))
        #expect(store.get(alias, now: 0)?.body == .whole(Array("stored".utf8)))
        let orphan = CacheKey(bytes: (8, 8, 8, 8))
        store.addAlias(orphan, for: key(2))
        #expect(store.get(orphan, now: 0) == nil)
        #expect(store.count == 1)
    }

    @Test func bytesAreBoundedAndExpiredEntriesAreNotServed() {
        let big = String(repeating: "x", count: 600)
        let store = MemoryCacheStore(limits: .init(maxEntries: 100, maxBytes: 1_500))
        for n in 0..<5 { store.set(key(n), answer(big)) }
        #expect(store.bytes <= 1_500)
        #expect(store.get(key(4), now: 0) != nil)
        #expect(store.get(key(0), now: 0) == nil)
        store.set(key(9), answer("short", expiresAt: 10))
        #expect(store.get(key(9), now: 9) != nil)
        #expect(store.get(key(9), now: 10) == nil)
    }

    @Test func anAnswerRoundTripsThroughItsWireForm() {
        let stream = StoredAnswer(
            body: .events([Array("{\"a\":1}".utf8), Array("{\"b\":\"\u{0}\"}".utf8)]),
            model: "gpt-4o",
            upstream: "openai",
            cost: "0.000315",
            expiresAt: 1_700_000_000
        )
        #expect(StoredAnswer(decoding: stream.encoded()) == stream)
        #expect(StoredAnswer(decoding: answer("x").encoded()) == answer("x"))
        var damaged = stream.encoded()
        damaged.removeLast()
        #expect(StoredAnswer(decoding: damaged) == nil)
        #expect(StoredAnswer(decoding: Array("nonsense".utf8)) == nil)
    }
}

@Suite struct AnswerShaperTests {
    let events = [
        #"{"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        #"{"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"content":"Hello "},"finish_reason":null}]}"#,
        #"{"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"content":"world"},"finish_reason":null}]}"#,
        #"{"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        #"{"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
    ].map { Array($0.utf8) }

    func json(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    @Test func aStoredStreamIsServedWholeToAClientThatDidNotStream() throws {
        let answer = StoredAnswer(body: .events(events), model: "m", upstream: "u", cost: "0", expiresAt: 9)
        let whole = try json(try #require(AnswerShaper.wholeBody(answer)))
        #expect(whole["object"] as? String == "chat.completion")
        let choice = try #require((whole["choices"] as? [[String: Any]])?.first)
        let message = try #require(choice["message"] as? [String: Any])
        #expect(message["content"] as? String == "Hello world")
        #expect(choice["finish_reason"] as? String == "stop")
        #expect((whole["usage"] as? [String: Any])?["total_tokens"] as? Int == 5)
    }

    @Test func aStoredStreamReplaysItsChunksAndHidesUsageUnlessAsked() throws {
        let answer = StoredAnswer(body: .events(events), model: "m", upstream: "u", cost: "0", expiresAt: 9)
        #expect(AnswerShaper.events(answer, includeUsage: true) == events)
        #expect(AnswerShaper.events(answer, includeUsage: false) == Array(events.dropLast()))
    }

    @Test func aWholeAnswerIsCutIntoChunksThatMergeBackToIt() throws {
        let body = Array(
            #"{"id":"w","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"one two three"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":3,"total_tokens":4}}"#
                .utf8
        )
        let answer = StoredAnswer(body: .whole(body), model: "m", upstream: "u", cost: "0", expiresAt: 9)
        let chunks = try #require(AnswerShaper.events(answer, includeUsage: true))
        #expect(chunks.count == 6)  // role, three words, finish, usage
        let merged = StoredAnswer(body: .events(chunks), model: "m", upstream: "u", cost: "0", expiresAt: 9)
        let whole = try json(try #require(AnswerShaper.wholeBody(merged)))
        let message = try #require(((whole["choices"] as? [[String: Any]])?.first)?["message"] as? [String: Any])
        #expect(message["content"] as? String == "one two three")
        #expect(try #require(AnswerShaper.events(answer, includeUsage: false)).count == 5)
    }
}

@Suite struct SemanticIndexTests {
    func unit(_ values: [Float]) -> [Float] {
        let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return values.map { $0 / norm }
    }

    func vector(seed: UInt64, dims: Int = 384) -> [Float] {
        var state = seed
        return unit(
            (0..<dims).map { _ in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Float(Int64(bitPattern: state >> 11) % 2000) / 1000 - 1
            }
        )
    }

    let contextA = CacheKey(bytes: (1, 0, 0, 0))
    let contextB = CacheKey(bytes: (2, 0, 0, 0))

    @Test func theNearestAdmittedEntryOfTheSameContextIsFound() {
        let index = SemanticIndex(dimensions: 384, maxEntries: 1_000)
        for seed in 0..<200 {
            index.insert(
                .init(
                    context: contextA,
                    key: CacheKey(bytes: (0, UInt64(seed), 0, 0)),
                    vector: vector(seed: UInt64(seed)),
                    prompt: "p\(seed)",
                    expiresAt: 100
                )
            )
        }
        // A slightly moved copy of entry 7.
        var query = vector(seed: 7)
        for index in stride(from: 0, to: 384, by: 40) { query[index] += 0.02 }
        query = unit(query)
        let found = index.search(context: contextA, vector: query, threshold: 0.9, now: 0) { _, _ in true }
        #expect(found.match?.key == CacheKey(bytes: (0, 7, 0, 0)))
        #expect(found.bestSimilarity > 0.95)
        // The guard can refuse it; another context never sees it; an expired entry is not served.
        #expect(index.search(context: contextA, vector: query, threshold: 0.9, now: 0) { _, _ in false }.match == nil)
        #expect(index.search(context: contextB, vector: query, threshold: 0.9, now: 0) { _, _ in true }.match == nil)
        #expect(index.search(context: contextA, vector: query, threshold: 0.9, now: 100) { _, _ in true }.match == nil)
        // Below the threshold: no match, but the similarity is reported.
        let far = index.search(context: contextA, vector: vector(seed: 999), threshold: 0.9, now: 0) { _, _ in true }
        #expect(far.match == nil && far.bestSimilarity < 0.5)
    }

    @Test func theOldestEntriesGoWhenTheIndexIsFull() {
        let index = SemanticIndex(dimensions: 384, maxEntries: 10)
        for seed in 0..<25 {
            index.insert(
                .init(
                    context: seed.isMultiple(of: 2) ? contextA : contextB,
                    key: CacheKey(bytes: (0, UInt64(seed), 0, 0)),
                    vector: vector(seed: UInt64(seed)),
                    prompt: "",
                    expiresAt: 100
                )
            )
        }
        #expect(index.count == 10)
        #expect(
            index.search(context: contextA, vector: vector(seed: 0), threshold: 0.99, now: 0) { _, _ in true }.match
                == nil
        )
        #expect(
            index.search(context: contextA, vector: vector(seed: 24), threshold: 0.99, now: 0) { _, _ in true }.match?
                .key
                == CacheKey(bytes: (0, 24, 0, 0))
        )
    }
}
