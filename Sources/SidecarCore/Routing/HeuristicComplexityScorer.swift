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

    public init() {}

    public func score(_ input: ScoringInput) -> ComplexityScore {
        var totalCharacters = 0
        var userTurns = 0
        var nonTextParts = 0
        var inspected = ""
        for message in input.messages {
            totalCharacters += message.text.count
            nonTextParts += message.nonTextParts
            if message.role == "user" { userTurns += 1 }
            if inspected.count < Self.inspectedCharacters {
                inspected += message.text.prefix(Self.inspectedCharacters - inspected.count)
                inspected += "\n"
            }
        }
        let text = inspected.lowercased()

        let length = min(log2(1 + Double(totalCharacters) / 100) / log2(1 + 8000 / 100), 1)
        let reasoning = min(Double(Self.countDistinct(Self.reasoningTerms, in: text)) / 4, 1)
        let parts = min(Double(max(Self.countParts(in: text) - 1, 0)) / 4, 1)
        let code = min(Double(Self.countDistinct(Self.codeTerms, in: text)) / 2, 1)
        let math = min(Double(Self.countDistinct(Self.mathTerms, in: text)) / 2, 1)
        let constraints = min(Double(Self.countDistinct(Self.constraintTerms, in: text)) / 3, 1)
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

    private static func countDistinct(_ terms: [String], in text: String) -> Int {
        terms.reduce(0) { $0 + (text.contains($1) ? 1 : 0) }
    }

    /// Numbered items, bullet lines and question marks: how many things the prompt asks for.
    private static func countParts(in text: String) -> Int {
        var parts = 0
        var atLineStart = true
        var previous: Character = "\n"
        for character in text {
            if character == "?" { parts += 1 }
            if atLineStart {
                if character == "-" || character == "*" || character == "•" {
                    parts += 1
                } else if character.isNumber, !previous.isNumber {
                    parts += 1
                }
            }
            if character == "\n" {
                atLineStart = true
            } else if character != " " && character != "\t" && !character.isNumber {
                atLineStart = false
            }
            previous = character
        }
        return parts
    }
}
