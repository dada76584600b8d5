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
    private let matcher = TermMatcher([Self.reasoningTerms, Self.codeTerms, Self.mathTerms, Self.constraintTerms])

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
        let found = self.matcher.countDistinct(in: text)
        let reasoning = min(Double(found.0) / 4, 1)
        let parts = min(Double(max(Self.countParts(in: text) - 1, 0)) / 4, 1)
        let code = min(Double(found.1) / 2, 1)
        let math = min(Double(found.2) / 2, 1)
        let constraints = min(Double(found.3) / 3, 1)
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
    /// Every term's bytes, back to back; term `i` is `bytes[starts[i]..<starts[i + 1]]`.
    private let bytes: [UInt8]
    private let starts: [Int]
    /// Which of the (up to four) lists term `i` came from.
    private let lists: [Int]
    /// Terms by first byte: the terms starting with byte `b` are
    /// `byFirstByte[bucketStarts[b]..<bucketStarts[b + 1]]`.
    private let bucketStarts: [Int]
    private let byFirstByte: [Int]
    /// A bit per two-byte prefix some term starts with: most positions are rejected by one lookup.
    private let prefixes: [UInt64]

    /// - Parameter lists: up to four term lists, counted separately in one pass.
    init(_ lists: [[String]]) {
        var bytes: [UInt8] = []
        var starts: [Int] = [0]
        var listOf: [Int] = []
        var buckets = [[Int]](repeating: [], count: 256)
        for (list, terms) in lists.prefix(4).enumerated() {
            for term in terms {
                let utf8 = Array(term.utf8)
                guard let first = utf8.first else { continue }
                buckets[Int(first)].append(listOf.count)
                bytes += utf8
                starts.append(bytes.count)
                listOf.append(list)
            }
        }
        self.lists = listOf
        var prefixes = [UInt64](repeating: 0, count: 1024)
        for term in 0..<listOf.count {
            let first = Int(bytes[starts[term]])
            // One-byte terms (none today) would match any second byte.
            let seconds = starts[term + 1] - starts[term] > 1 ? [Int(bytes[starts[term] + 1])] : Array(0..<256)
            for second in seconds {
                let key = first << 8 | second
                prefixes[key >> 6] |= 1 << UInt64(key & 63)
            }
        }
        self.prefixes = prefixes
        var bucketStarts: [Int] = [0]
        var byFirstByte: [Int] = []
        for bucket in buckets {
            byFirstByte += bucket
            bucketStarts.append(byFirstByte.count)
        }
        self.bytes = bytes
        self.starts = starts
        self.bucketStarts = bucketStarts
        self.byFirstByte = byFirstByte
    }

    /// How many different terms of each list occur in `text` (as byte substrings).
    func countDistinct(in text: [UInt8]) -> (Int, Int, Int, Int) {
        var found = [Bool](repeating: false, count: self.starts.count - 1)
        var counts = (0, 0, 0, 0)
        let lists = self.lists
        text.withUnsafeBufferPointer { text in
            self.bytes.withUnsafeBufferPointer { bytes in
                self.starts.withUnsafeBufferPointer { starts in
                    self.bucketStarts.withUnsafeBufferPointer { bucketStarts in
                        self.byFirstByte.withUnsafeBufferPointer { byFirstByte in
                            found.withUnsafeMutableBufferPointer { found in
                                self.prefixes.withUnsafeBufferPointer { prefixes in
                                    for position in 0..<text.count {
                                        let first = Int(text[position])
                                        let second = position + 1 < text.count ? Int(text[position + 1]) : 0
                                        let key = first << 8 | second
                                        if prefixes[key >> 6] & (1 << UInt64(key & 63)) == 0 { continue }
                                        var slot = bucketStarts[first]
                                        let end = bucketStarts[first + 1]
                                        while slot < end {
                                            let term = byFirstByte[slot]
                                            slot += 1
                                            if found[term] { continue }
                                            let start = starts[term]
                                            let length = starts[term + 1] - start
                                            guard position + length <= text.count else { continue }
                                            var offset = 1
                                            while offset < length && text[position + offset] == bytes[start + offset] {
                                                offset += 1
                                            }
                                            if offset == length {
                                                found[term] = true
                                                switch lists[term] {
                                                case 0: counts.0 += 1
                                                case 1: counts.1 += 1
                                                case 2: counts.2 += 1
                                                default: counts.3 += 1
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return counts
    }
}
