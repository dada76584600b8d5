import Foundation

/// A first complexity scorer: a logistic model over hand-picked text features.
///
/// Features (each scaled to 0...1): prompt length (log scale), distinct reasoning and design
/// vocabulary, number of parts asked for (numbered items, bullets, questions), code, maths,
/// explicit constraints, conversation turns, tools and non-text parts. Weights were set by hand
/// from what makes a prompt need a stronger model; they are not fitted to any evaluation set.
public struct HeuristicComplexityScorer: ComplexityScorer {
    /// Only this many leading characters of the conversation are inspected for vocabulary.
    static let inspectedCharacters = 16_384

    static let reasoningTerms: [String] = [
        "analy", "architect", "design", "trade-off", "tradeoff", "compare", "contrast", "evaluate", "prove",
        "derive", "optimi", "explain why", "step by step", "strategy", "implement", "refactor", "debug",
        "algorithm", "complexity", "scalab", "comprehensive", "in depth", "in-depth", "pros and cons", "critique",
        "plan", "assess", "justify", "recommend", "migrat", "distributed", "concurren", "security", "threat model",
        "proof", "theorem", "hypothes", "investigat", "diagnos", "synthesi", "edge case", "failure mode",
    ]
    static let codeTerms: [String] = [
        "```", "def ", "function", "class ", "#include", "import ", "return ", "=>", "sql", "python", "swift",
        "javascript", "typescript", "rust", "golang", "java", "c++", "regex", "stack trace", "compile",
    ]
    static let mathTerms: [String] = [
        "integral", "derivative", "equation", "matrix", "probability", "theorem", "lemma", "\\frac", "\\sum",
        "solve for", "polynomial", "eigen", "limit of", "modulo", "prime",
    ]
    static let constraintTerms: [String] = [
        "must", "should", "ensure", "requirement", "at least", "at most", "without", "constraint", "exactly",
        "do not", "don't", "format", "include",
    ]

    /// Terms as lower-case UTF-8, bucketed by first byte for a single pass over the text.
    private let reasoningMatcher = TermMatcher(Self.reasoningTerms)
    private let codeMatcher = TermMatcher(Self.codeTerms)
    private let mathMatcher = TermMatcher(Self.mathTerms)
    private let constraintMatcher = TermMatcher(Self.constraintTerms)

    public init() {}

    public func score(_ input: ScoringInput) -> ComplexityScore {
        var totalBytes = 0
        var userTurns = 0
        var nonTextParts = 0
        var text: [UInt8] = []
        text.reserveCapacity(min(Self.inspectedCharacters, input.messages.reduce(0) { $0 + $1.text.utf8.count + 1 }))
        for message in input.messages {
            totalBytes += message.text.utf8.count
            nonTextParts += message.nonTextParts
            if message.role == "user" { userTurns += 1 }
            for byte in message.text.utf8 {
                guard text.count < Self.inspectedCharacters else { break }
                // ASCII lower-casing is enough: every term is ASCII.
                text.append((UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte)
            }
            if text.count < Self.inspectedCharacters { text.append(UInt8(ascii: "\n")) }
        }

        let length = min(log2(1 + Double(totalBytes) / 100) / log2(1 + 8000 / 100), 1)
        let reasoning = min(Double(self.reasoningMatcher.countDistinct(in: text)) / 4, 1)
        let parts = min(Double(max(Self.countParts(in: text) - 1, 0)) / 4, 1)
        let code = min(Double(self.codeMatcher.countDistinct(in: text)) / 2, 1)
        let math = min(Double(self.mathMatcher.countDistinct(in: text)) / 2, 1)
        let constraints = min(Double(self.constraintMatcher.countDistinct(in: text)) / 3, 1)
        let turns = min(Double(max(userTurns - 1, 0)) / 6, 1)
        let tools = input.toolCount > 0 ? 1.0 : 0.0
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

    /// Numbered items, bullet lines and question marks: how many things the prompt asks for.
    private static func countParts(in text: [UInt8]) -> Int {
        var parts = 0
        var atLineStart = true
        var previousWasDigit = false
        var index = 0
        while index < text.count {
            let byte = text[index]
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

/// Counts which of a fixed set of ASCII terms occur in a byte string, in one pass.
struct TermMatcher: Sendable {
    private let terms: [[UInt8]]
    /// Term indices by first byte.
    private let buckets: [[Int]]

    init(_ terms: [String]) {
        self.terms = terms.map { Array($0.utf8) }
        var buckets = [[Int]](repeating: [], count: 256)
        for (index, term) in self.terms.enumerated() {
            if let first = term.first { buckets[Int(first)].append(index) }
        }
        self.buckets = buckets
    }

    func countDistinct(in text: [UInt8]) -> Int {
        var found = [Bool](repeating: false, count: self.terms.count)
        var count = 0
        text.withUnsafeBufferPointer { bytes in
            for position in 0..<bytes.count {
                for termIndex in self.buckets[Int(bytes[position])] where !found[termIndex] {
                    let term = self.terms[termIndex]
                    guard position + term.count <= bytes.count else { continue }
                    var matches = true
                    for offset in 1..<term.count where bytes[position + offset] != term[offset] {
                        matches = false
                        break
                    }
                    if matches {
                        found[termIndex] = true
                        count += 1
                    }
                }
            }
        }
        return count
    }
}
