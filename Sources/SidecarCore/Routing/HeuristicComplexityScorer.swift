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
        var capacity = 0
        for message in input.messages { capacity += message.text.utf8.count + 1 }
        capacity = min(capacity, Self.inspectedCharacters)
        // Lower-cased (ASCII is enough: every term is ASCII), newline-separated, capped.
        let text = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
            for message in input.messages {
                totalBytes += message.text.utf8.count
                nonTextParts += message.nonTextParts
                if message.role == "user" { userTurns += 1 }
                guard count < capacity else { continue }
                var text = message.text
                text.withUTF8 { bytes in
                    let take = min(bytes.count, capacity - count)
                    for index in 0..<take {
                        let byte = bytes[index]
                        buffer[count + index] = byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
                    }
                    count += take
                }
                if count < capacity {
                    buffer[count] = UInt8(ascii: "\n")
                    count += 1
                }
            }
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
        text.withUnsafeBufferPointer { Self.countParts(in: $0) }
    }

    private static func countParts(in text: UnsafeBufferPointer<UInt8>) -> Int {
        var parts = 0
        var atLineStart = true
        var previousWasDigit = false
        var index = 0
        while index < text.count {
            let byte = text[index]
            // The common case first: a lower-case letter (the text is lower-cased) ends a line start.
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

/// Counts which of a fixed set of ASCII terms occur in a byte string, in one pass.
struct TermMatcher: Sendable {
    /// Every term's bytes, back to back; term `i` is `bytes[starts[i]..<starts[i + 1]]`.
    private let bytes: [UInt8]
    private let starts: [Int]
    /// Which of the (up to four) lists term `i` came from.
    private let lists: [Int]
    /// Term `i`'s first four bytes (little-endian, zero-padded) and the mask of the ones it has:
    /// one comparison rejects most candidates.
    private let prefix4: [UInt32]
    private let mask4: [UInt32]
    /// For each two-byte prefix, 0 or 1 + the bucket of the terms starting with it: one
    /// lookup rejects most positions, and a hit compares only the few terms sharing the prefix.
    private let bucketOf: [UInt16]
    /// A bit per two-byte prefix in `bucketOf` (8 KiB, stays in L1): most positions stop here.
    private let hasBucket: [UInt64]
    /// The terms of bucket `b` are `byPrefix[bucketStarts[b]..<bucketStarts[b + 1]]`.
    private let bucketStarts: [Int]
    private let byPrefix: [Int]

    /// - Parameter lists: up to four term lists, counted separately in one pass.
    init(_ lists: [[String]]) {
        var bytes: [UInt8] = []
        var starts: [Int] = [0]
        var listOf: [Int] = []
        var termsByKey: [Int: [Int]] = [:]
        for (list, terms) in lists.prefix(4).enumerated() {
            for term in terms {
                let utf8 = Array(term.utf8)
                guard let first = utf8.first else { continue }
                // A one-byte term matches whatever byte follows it.
                let seconds = utf8.count > 1 ? [Int(utf8[1])] : Array(0..<256)
                for second in seconds {
                    termsByKey[Int(first) << 8 | second, default: []].append(listOf.count)
                }
                bytes += utf8
                starts.append(bytes.count)
                listOf.append(list)
            }
        }
        var bucketOf = [UInt16](repeating: 0, count: 1 << 16)
        var bucketStarts: [Int] = [0]
        var byPrefix: [Int] = []
        for (key, terms) in termsByKey.sorted(by: { $0.key < $1.key }) where bucketStarts.count < Int(UInt16.max) {
            bucketOf[key] = UInt16(bucketStarts.count)
            byPrefix += terms
            bucketStarts.append(byPrefix.count)
        }
        var hasBucket = [UInt64](repeating: 0, count: 1 << 10)
        for key in 0..<(1 << 16) where bucketOf[key] != 0 {
            hasBucket[key >> 6] |= 1 << UInt64(key & 63)
        }
        self.hasBucket = hasBucket
        var prefix4: [UInt32] = []
        var mask4: [UInt32] = []
        for term in 0..<listOf.count {
            var prefix: UInt32 = 0
            var mask: UInt32 = 0
            for offset in 0..<min(4, starts[term + 1] - starts[term]) {
                prefix |= UInt32(bytes[starts[term] + offset]) << UInt32(8 * offset)
                mask |= 0xFF << UInt32(8 * offset)
            }
            prefix4.append(prefix)
            mask4.append(mask)
        }
        self.prefix4 = prefix4
        self.mask4 = mask4
        self.bytes = bytes
        self.starts = starts
        self.lists = listOf
        self.bucketOf = bucketOf
        self.bucketStarts = bucketStarts
        self.byPrefix = byPrefix
    }

    /// How many different terms of each list occur in `text` (as byte substrings).
    func countDistinct(in text: [UInt8]) -> (Int, Int, Int, Int) {
        var counts = (0, 0, 0, 0)
        text.withUnsafeBufferPointer { text in
            self.bytes.withUnsafeBufferPointer { bytes in
                self.starts.withUnsafeBufferPointer { starts in
                    self.bucketOf.withUnsafeBufferPointer { bucketOf in
                        self.bucketStarts.withUnsafeBufferPointer { bucketStarts in
                            self.byPrefix.withUnsafeBufferPointer { byPrefix in
                                self.lists.withUnsafeBufferPointer { lists in
                                    withUnsafeTemporaryAllocation(of: Bool.self, capacity: self.lists.count) { found in
                                        found.initialize(repeating: false)
                                        self.hasBucket.withUnsafeBufferPointer { hasBucket in
                                            self.prefix4.withUnsafeBufferPointer { prefix4 in
                                                self.mask4.withUnsafeBufferPointer { mask4 in
                                                    var position = 0
                                                    while position < text.count {
                                                        let second =
                                                            position + 1 < text.count ? Int(text[position + 1]) : 0
                                                        let key = Int(text[position]) << 8 | second
                                                        let bucket =
                                                            hasBucket[key >> 6] & (1 << UInt64(key & 63)) == 0
                                                            ? 0 : Int(bucketOf[key])
                                                        if bucket != 0 {
                                                            var word: UInt32 = 0
                                                            for offset in 0..<min(4, text.count - position) {
                                                                word |=
                                                                    UInt32(text[position + offset])
                                                                    << UInt32(8 * offset)
                                                            }
                                                            for slot in bucketStarts[bucket - 1]..<bucketStarts[bucket]
                                                            {
                                                                let term = byPrefix[slot]
                                                                if found[term] || word & mask4[term] != prefix4[term] {
                                                                    continue
                                                                }
                                                                let start = starts[term]
                                                                let length = starts[term + 1] - start
                                                                guard position + length <= text.count else { continue }
                                                                var offset = min(4, length)
                                                                while offset < length
                                                                    && text[position + offset] == bytes[start + offset]
                                                                {
                                                                    offset += 1
                                                                }
                                                                guard offset == length else { continue }
                                                                found[term] = true
                                                                switch lists[term] {
                                                                case 0: counts.0 += 1
                                                                case 1: counts.1 += 1
                                                                case 2: counts.2 += 1
                                                                default: counts.3 += 1
                                                                }
                                                            }
                                                        }
                                                        position += 1
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
        }
        return counts
    }
}
