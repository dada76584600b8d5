import CSidecarKernels
import Testing

@testable import SidecarCore
@testable import SidecarPolicy

/// The bucketed, prefix-filtered matcher must count exactly what a naive substring search counts.
struct TermMatcherTests {
    /// Counts the distinct terms of each list in `text`'s ASCII lower-casing.
    static func naive(_ lists: [[String]], _ text: [UInt8]) -> [Int] {
        let text = text.map { $0 &- UInt8(ascii: "A") < 26 ? $0 | 0x20 : $0 }
        return lists.map { terms in
            Set(terms).filter { term in
                let needle = Array(term.utf8)
                guard !needle.isEmpty, needle.count <= text.count else { return false }
                return (0...(text.count - needle.count)).contains { Array(text[$0..<($0 + needle.count)]) == needle }
            }.count
        }
    }

    @Test func countsLikeANaiveSearch() {
        let lists = [
            HeuristicComplexityScorer.reasoningTerms, HeuristicComplexityScorer.codeTerms,
            HeuristicComplexityScorer.mathTerms, HeuristicComplexityScorer.constraintTerms,
        ]
        let matcher = TermMatcher(lists)
        let vocabulary =
            lists.flatMap { $0 } + ["a", "the ", " ", "\n", "x", "an", "co", "pr", "?", "1.", "de", "=", "```"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var text: [UInt8] = []
            for _ in 0..<Int.random(in: 0...60, using: &generator) {
                var piece = Array((vocabulary.randomElement(using: &generator) ?? "a").utf8)
                if Bool.random(using: &generator), piece.count > 2 {
                    piece.removeLast(Int.random(in: 1..<piece.count, using: &generator))  // near misses
                }
                if Int.random(in: 0..<4, using: &generator) == 0 {
                    piece = piece.map { $0 &- UInt8(ascii: "a") < 26 ? $0 & ~0x20 : $0 }  // upper case
                }
                text += piece
            }
            let counts = matcher.countDistinct(in: text)
            #expect([counts.0, counts.1, counts.2, counts.3] == Self.naive(lists, text))
        }
    }

    /// One-byte, short, upper-case, non-ASCII and prefix-sharing terms.
    @Test func countsOddTermsLikeANaiveSearch() {
        let lists = [
            ["a", "x?", "AB", "abc", "abcd", "abcdefghij", "=>", "é"],
            ["z", "zz", "abce", "ab cd", "\t"],
            ["q"],
            ["Zq", "zq9", "1", "12345678", "123456789"],
        ]
        let matcher = TermMatcher(lists)
        let vocabulary = lists.flatMap { $0 } + ["A", "ABC", "É", "x", " ", "?", "ab", "abcdefghi", "1234567"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            var text: [UInt8] = []
            for _ in 0..<Int.random(in: 0...12, using: &generator) {
                text += Array((vocabulary.randomElement(using: &generator) ?? "a").utf8)
            }
            let counts = matcher.countDistinct(in: text)
            #expect([counts.0, counts.1, counts.2, counts.3] == Self.naive(lists, text))
        }
    }

    /// The fingerprint sieve keeps every position where a term starts, and its vector code (AVX2
    /// on this CPU, when it has it) keeps exactly the positions the portable code keeps, at
    /// every offset from a text's end.
    @Test func fingerprintsKeepEveryStartAndAgreeWithThePortableCode() {
        let lists = [
            HeuristicComplexityScorer.reasoningTerms, HeuristicComplexityScorer.codeTerms,
            HeuristicComplexityScorer.mathTerms, HeuristicComplexityScorer.constraintTerms,
            ["a", "x?", "=>", "é", "\t"],
        ]
        let terms = lists.flatMap { $0 }.map { Array($0.utf8) }
        let masks = TermMatcher.fingerprints(terms)
        let vocabulary = lists.flatMap { $0 } + ["A", "the ", " ", "\n", "x", "co", "pr", "?", "=", "É", "\u{0}"]
        var random = SplitMix64(seed: 0xF1)
        for _ in 0..<400 {
            var text: [UInt8] = []
            for _ in 0..<Int.random(in: 0...40, using: &random) {
                var piece = Array((vocabulary.randomElement(using: &random) ?? "a").utf8)
                if Bool.random(using: &random) {
                    piece = piece.map { $0 &- UInt8(ascii: "a") < 26 ? $0 & ~0x20 : $0 }
                }
                text += piece
            }
            let lower = text.map { $0 &- UInt8(ascii: "A") < 26 ? $0 | 0x20 : $0 }
            var kept: [UInt64] = []
            for block in stride(from: 0, to: text.count + 64, by: 64) {
                let fast = sidecar_fingerprint_block(masks, text, text.count, block)
                #expect(fast == sidecar_fingerprint_block_portable(masks, text, text.count, block))
                kept.append(fast)
            }
            for start in text.indices {
                let startsATerm = terms.contains { term in
                    start + term.count <= text.count && Array(lower[start..<(start + term.count)]) == term
                }
                let isKept = kept[start / 64] & (1 << UInt64(start % 64)) != 0
                #expect(!startsATerm || isKept)
            }
        }
    }
}
