import Foundation

/// A first complexity scorer: a logistic model over hand-picked text features.
///
/// Features (each scaled to 0...1): prompt length (log scale), distinct reasoning and design
/// vocabulary, number of parts asked for (numbered items, bullets, questions), code, maths,
/// explicit constraints, conversation turns, tools and non-text parts. Weights were set by hand
/// from what makes a prompt need a stronger model; they are not fitted to any evaluation set.
public struct HeuristicComplexityScorer: ComplexityScorer {
    /// Only this many leading characters of the conversation are inspected for vocabulary.
    package static let inspectedCharacters = 16_384

    package static let reasoningTerms: [String] = [
        "analy", "architect", "design", "trade-off", "tradeoff", "compare", "contrast", "evaluate", "prove",
        "derive", "optimi", "explain why", "step by step", "strategy", "implement", "refactor", "debug",
        "algorithm", "complexity", "scalab", "comprehensive", "in depth", "in-depth", "pros and cons", "critique",
        "plan", "assess", "justify", "recommend", "migrat", "distributed", "concurren", "security", "threat model",
        "proof", "theorem", "hypothes", "investigat", "diagnos", "synthesi", "edge case", "failure mode",
    ]
    package static let codeTerms: [String] = [
        "```", "def ", "function", "class ", "#include", "import ", "return ", "=>", "sql", "python", "swift",
        "javascript", "typescript", "rust", "golang", "java", "c++", "regex", "stack trace", "compile",
    ]
    package static let mathTerms: [String] = [
        "integral", "derivative", "equation", "matrix", "probability", "theorem", "lemma", "\\frac", "\\sum",
        "solve for", "polynomial", "eigen", "limit of", "modulo", "prime",
    ]
    package static let constraintTerms: [String] = [
        "must", "should", "ensure", "requirement", "at least", "at most", "without", "constraint", "exactly",
        "do not", "don't", "format", "include",
    ]

    /// The four term lists, matched in one pass.
    private let matcher = TermMatcher([Self.reasoningTerms, Self.codeTerms, Self.mathTerms, Self.constraintTerms])

    public init() {}

    public func score(_ input: ScoringInput) -> ComplexityScore {
        var totalBytes = 0
        var userTurns = 0
        var nonTextParts = 0
        var toolMessages = 0
        for message in input.messages {
            totalBytes += message.text.utf8.count
            nonTextParts += message.nonTextParts
            if message.role == "user" { userTurns += 1 }
            if message.role == "tool" || message.role == "function" { toolMessages += 1 }
        }
        // The inspected text is the messages joined by line breaks (one after each), capped, the
        // last user turn first (a long history must not crowd out the question). Each message is
        // read in place: the matcher lower-cases as it goes, no term holds a line break (so none
        // spans two messages), and the part counter is told of each break.
        var remaining = min(totalBytes + input.messages.count, Self.inspectedCharacters)
        var partCounter = PartCounter()
        let last = input.lastUserIndex ?? 0
        let found = self.matcher.countDistinct { scanner in
            for offset in input.messages.indices where remaining > 0 {
                // last, 0, 1, ... (skipping last)
                let index = offset == 0 ? last : (offset <= last ? offset - 1 : offset)
                var text = input.messages[index].text
                text.withUTF8 { bytes in
                    let taken = UnsafeBufferPointer(rebasing: bytes.prefix(remaining))
                    scanner.scan(taken)
                    partCounter.count(in: taken)
                    remaining -= taken.count
                }
                if remaining > 0 {
                    partCounter.lineBreak()
                    remaining -= 1
                }
            }
        }

        let length = min(log2(1 + Double(totalBytes) / 100) / log2(1 + 8000 / 100), 1)
        let reasoning = min(Double(found.0) / 4, 1)
        let parts = min(Double(max(partCounter.parts - 1, 0)) / 4, 1)
        let code = min(Double(found.1) / 2, 1)
        let math = min(Double(found.2) / 2, 1)
        let constraints = min(Double(found.3) / 3, 1)
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
            features: HeuristicFeatures(
                length: length,
                reasoning: reasoning,
                parts: parts,
                code: code,
                math: math,
                constraints: constraints,
                turns: turns,
                tools: tools,
                media: media
            )
        )
    }
}
