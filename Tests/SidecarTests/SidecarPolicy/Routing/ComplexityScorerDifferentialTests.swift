import Foundation
import Testing

@testable import SidecarCore
@testable import SidecarOpenAI
@testable import SidecarPolicy

/// The scorer reads messages in place and lower-cases as it goes; it must score exactly as the
/// straightforward version it replaced (`ReferenceScorer`), bit for bit, on any input.
struct ComplexityScorerDifferentialTests {
    let scorer = HeuristicComplexityScorer()

    static let lists = [
        HeuristicComplexityScorer.reasoningTerms, HeuristicComplexityScorer.codeTerms,
        HeuristicComplexityScorer.mathTerms, HeuristicComplexityScorer.constraintTerms,
    ]

    /// Terms, near misses, words, line starts, digits, bullets and multi-byte UTF-8.
    static let pieces: [String] =
        lists.flatMap { $0 } + lists.flatMap { $0 }.map { String($0.dropLast()) } + [
            " ", " ", " ", "\n", "\n", "\t", "- ", "* ", "• ", "•", "\u{2022}x", "\u{E2}", "?", "??", "1.", "12",
            "3) ", " 42 ", "0", "a", "the ", "and ", "of ", "an", "co", "pr", "de", "re", "st", "in", "x", "Z",
            "@", "[", "`", "{", "=", ">", "+", "#", "\\", "'", "é", "É", "ß", "中文", "🙂", "ℂ", "İ", "ǅ",
        ]

    @Test func scoresLikeTheReferenceOnRandomConversations() async {
        var random = SplitMix64(seed: 0x5EED)
        for round in 0..<3000 {
            let input = Self.randomInput(&random, long: round % 60 == 0)
            await expectSameScore(input)
        }
    }

    @Test func scoresLikeTheReferenceOnRealisticPrompts() async {
        let system = "You are a helpful assistant."
        let prompts = [
            "What is 12 plus 34?", SidecarHarness.hardPrompt, "", "Hi!", "What is 2+2?",
            "Fix this python function: ```def f(x): return x```",
            "1. Analyze\n2. Compare\n- design\n* prove\n• derive\n  3 4 5?\n\t-x",
            "ANALYZE THE TRADE-OFFS; Don't forget: MUST include a THEOREM. Explain Why, Step By Step.",
            String(repeating: "analyze design prove compare 1. 2. 3. ", count: 2000),
        ]
        for prompt in prompts {
            await expectSameScore(ScoringInput(prompt: prompt))
            await expectSameScore(
                ScoringInput(messages: [.init(role: "system", text: system), .init(role: "user", text: prompt)])
            )
        }
    }

    /// Terms cut by the end of a message, by the 16,384-byte cap, and split across two messages.
    @Test func scoresLikeTheReferenceAtBoundaries() async {
        let cap = HeuristicComplexityScorer.inspectedCharacters
        let terms = Self.lists.flatMap { $0 }
        for (index, term) in (terms + ["•", "\n1", "?"]).enumerated() {
            // Every few terms (the reference is slow on capped texts), cut at each of its bytes.
            for shift in -1...(term.utf8.count + 1) where index % 6 == 0 || index >= terms.count {
                let filler = String(repeating: "x", count: max(cap - shift, 0))
                await expectSameScore(ScoringInput(prompt: filler + term))
                await expectSameScore(
                    ScoringInput(messages: [.init(role: "user", text: filler), .init(role: "user", text: term)])
                )
            }
            for shift in -1...(term.utf8.count + 1) {
                let cut = min(max(shift, 0), term.utf8.count)
                let head = String(decoding: Array(term.utf8.prefix(cut)), as: UTF8.self)
                let tail = String(decoding: Array(term.utf8.dropFirst(cut)), as: UTF8.self)
                await expectSameScore(
                    ScoringInput(messages: [.init(role: "user", text: head), .init(role: "assistant", text: tail)])
                )
                await expectSameScore(ScoringInput(messages: [.init(role: "user", text: term.uppercased())]))
            }
        }
    }

    /// The scorer does not join messages, so no term may hold the line break that joined them.
    @Test func noTermHoldsALineBreak() {
        #expect(Self.lists.flatMap { $0 }.allSatisfy { !$0.utf8.contains(UInt8(ascii: "\n")) })
    }

    /// Yields first: these tests run for many seconds of CPU in a debug build, and must not hold a
    /// thread of the (two-thread, on CI) cooperative pool that live tests' fake upstreams answer on.
    func expectSameScore(_ input: ScoringInput, sourceLocation: SourceLocation = #_sourceLocation) async {
        await Task.yield()
        let actual = scorer.score(input)
        let expected = ReferenceScorer.score(input, lists: Self.lists)
        #expect(actual.value.bitPattern == expected.value.bitPattern, sourceLocation: sourceLocation)
        #expect(actual.features.map(\.name) == expected.features.map(\.name), sourceLocation: sourceLocation)
        #expect(
            actual.features.map(\.value.bitPattern) == expected.features.map(\.value.bitPattern),
            sourceLocation: sourceLocation
        )
    }

    static func randomInput(_ random: inout SplitMix64, long: Bool) -> ScoringInput {
        let roles = ["user", "system", "assistant", "tool", "User"]
        var messages: [ScoringInput.Message] = []
        for _ in 0..<Int.random(in: 0...(long ? 3 : 7), using: &random) {
            var text = ""
            let count = long ? Int.random(in: 1000...4000, using: &random) : Int.random(in: 0...80, using: &random)
            for _ in 0..<count {
                var piece = pieces.randomElement(using: &random) ?? " "
                switch Int.random(in: 0..<8, using: &random) {
                case 0: piece = piece.uppercased()
                case 1: piece = piece.capitalized
                default: break
                }
                text += piece
            }
            messages.append(
                .init(
                    role: roles.randomElement(using: &random) ?? "user",
                    text: text,
                    nonTextParts: Int.random(in: 0...8, using: &random) == 0 ? 1 : 0
                )
            )
        }
        return ScoringInput(messages: messages, toolCount: Int.random(in: 0...4, using: &random) == 0 ? 2 : 0)
    }
}

/// The scorer as it was before it read messages in place: joins the messages (the last user
/// turn first) into one capped, lower-cased byte array, then counts terms by plain substring
/// search and parts byte by byte.
enum ReferenceScorer {
    static func score(_ input: ScoringInput, lists: [[String]]) -> ComplexityScore {
        var totalBytes = 0
        var userTurns = 0
        var nonTextParts = 0
        var capacity = 0
        for message in input.messages { capacity += message.text.utf8.count + 1 }
        capacity = min(capacity, HeuristicComplexityScorer.inspectedCharacters)
        var text: [UInt8] = []
        var toolMessages = 0
        // The last user turn is read first, then the others in order.
        var order = Array(input.messages.indices)
        if let last = input.messages.lastIndex(where: { $0.role == "user" }) ?? order.last {
            order.remove(at: last)
            order.insert(last, at: 0)
        }
        for message in order.map({ input.messages[$0] }) {
            totalBytes += message.text.utf8.count
            nonTextParts += message.nonTextParts
            if message.role == "user" { userTurns += 1 }
            if message.role == "tool" || message.role == "function" { toolMessages += 1 }
            guard text.count < capacity else { continue }
            for byte in message.text.utf8.prefix(capacity - text.count) {
                text.append(byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte)
            }
            if text.count < capacity { text.append(UInt8(ascii: "\n")) }
        }

        let found = lists.map { terms in terms.filter { contains(text, Array($0.utf8)) }.count }
        let length = min(log2(1 + Double(totalBytes) / 100) / log2(1 + 8000 / 100), 1)
        let reasoning = min(Double(found[0]) / 4, 1)
        let parts = min(Double(max(countParts(in: text) - 1, 0)) / 4, 1)
        let code = min(Double(found[1]) / 2, 1)
        let math = min(Double(found[2]) / 2, 1)
        let constraints = min(Double(found[3]) / 3, 1)
        let turns = min(Double(max(userTurns - 1, 0)) / 6, 1)
        let tools = input.toolCount > 0 || toolMessages > 0 ? 1.0 : 0.0
        let media = nonTextParts > 0 ? 1.0 : 0.0

        var z = -2.6
        z += 2.6 * length
        z += 1.8 * reasoning
        z += 1.0 * parts
        z += 0.9 * code
        z += 0.7 * math
        z += 0.5 * constraints
        z += 0.5 * turns
        z += 0.6 * tools
        z += 0.4 * media
        let value = 1 / (1 + exp(-z))
        return ComplexityScore(
            value: value,
            features: [
                ("length", length), ("reasoning", reasoning), ("parts", parts), ("code", code), ("math", math),
                ("constraints", constraints), ("turns", turns), ("tools", tools), ("media", media),
            ]
        )
    }

    static func contains(_ text: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return false }
        var start = 0
        while start + needle.count <= text.count {
            var offset = 0
            while offset < needle.count && text[start + offset] == needle[offset] { offset += 1 }
            if offset == needle.count { return true }
            start += 1
        }
        return false
    }

    static func countParts(in text: [UInt8]) -> Int {
        var parts = 0
        var atLineStart = true
        var previousWasDigit = false
        var index = 0
        while index < text.count {
            let byte = text[index]
            if byte &- UInt8(ascii: "a") < 26 {
                atLineStart = false
                previousWasDigit = false
                index += 1
                continue
            }
            let isDigit = (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            if byte == UInt8(ascii: "?") { parts += 1 }
            if atLineStart {
                if byte == UInt8(ascii: "-") || byte == UInt8(ascii: "*") {
                    parts += 1
                } else if byte == 0xE2, index + 2 < text.count, text[index + 1] == 0x80, text[index + 2] == 0xA2 {
                    parts += 1  // "•"
                } else if isDigit && !previousWasDigit {
                    parts += 1
                }
            }
            if byte == UInt8(ascii: "\n") {
                atLineStart = true
            } else if byte != UInt8(ascii: " ") && byte != UInt8(ascii: "\t") && !isDigit {
                atLineStart = false
            }
            previousWasDigit = isDigit
            index += 1
        }
        return parts
    }
}
