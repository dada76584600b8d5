/// libFuzzer's kind of mutations, for the seeded property tests that run the targets without
/// libFuzzer: from a seed input, a few byte flips, insertions, erasures, copies, dictionary
/// tokens and splices with other seeds.
package struct FuzzMutator {
    private var random: SplitMix64
    private let seeds: [[UInt8]]
    private let tokens: [[UInt8]]

    /// `seeds` must not be empty; `tokens` are dictionary entries (may be empty).
    package init(seed: UInt64, seeds: [[UInt8]], tokens: [[UInt8]]) {
        self.random = SplitMix64(seed: seed)
        self.seeds = seeds.isEmpty ? [[]] : seeds
        self.tokens = tokens
    }

    /// Random bytes, a seed, or a seed mutated one to eight times; at most `maximumLength` bytes.
    package mutating func next(maximumLength: Int) -> [UInt8] {
        var input: [UInt8]
        switch self.below(8) {
        case 0:
            input = (0..<self.below(64)).map { _ in UInt8(truncatingIfNeeded: self.random.next()) }
        case 1:
            input = self.seeds[self.below(self.seeds.count)]
        default:
            input = self.seeds[self.below(self.seeds.count)]
            for _ in 0...self.below(8) { self.mutate(&input) }
        }
        return Array(input.prefix(maximumLength))
    }

    private mutating func below(_ bound: Int) -> Int {
        bound <= 1 ? 0 : Int(self.random.next() % UInt64(bound))
    }

    private mutating func mutate(_ input: inout [UInt8]) {
        let position = self.below(input.count + 1)
        switch self.below(7) {
        case 0 where !input.isEmpty:
            input[min(position, input.count - 1)] ^= UInt8(1) << UInt8(self.below(8))
        case 1:
            input.insert(UInt8(truncatingIfNeeded: self.random.next()), at: position)
        case 2 where !input.isEmpty:
            let end = min(input.count, position + 1 + self.below(8))
            input.removeSubrange(min(position, input.count - 1)..<end)
        case 3 where !input.isEmpty:
            let start = self.below(input.count)
            let piece = input[start..<min(input.count, start + 1 + self.below(16))]
            input.insert(contentsOf: piece, at: position)
        case 4 where !self.tokens.isEmpty:
            input.insert(contentsOf: self.tokens[self.below(self.tokens.count)], at: position)
        case 5:
            let other = self.seeds[self.below(self.seeds.count)]
            let start = self.below(other.count + 1)
            input.replaceSubrange(position..<input.count, with: other[start...])
        default:
            if !input.isEmpty { input[min(position, input.count - 1)] = UInt8(truncatingIfNeeded: self.random.next()) }
        }
    }

    /// The entries of a libFuzzer dictionary file (`"..."` per line, `\xNN` and `\\` escapes).
    package static func dictionaryTokens(_ text: String) -> [[UInt8]] {
        text.split(separator: "\n").compactMap { line in
            guard let open = line.firstIndex(of: "\""), let close = line.lastIndex(of: "\""), open < close,
                !line.hasPrefix("#")
            else { return nil }
            var token: [UInt8] = []
            var bytes = Array(line[line.index(after: open)..<close].utf8)[...]
            while let byte = bytes.popFirst() {
                guard byte == UInt8(ascii: "\\"), let escaped = bytes.popFirst() else {
                    token.append(byte)
                    continue
                }
                if escaped == UInt8(ascii: "x"), bytes.count >= 2,
                    let value = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16)
                {
                    token.append(value)
                    bytes = bytes.dropFirst(2)
                } else {
                    token.append(escaped)
                }
            }
            return token
        }
    }
}
