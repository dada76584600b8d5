/// A JSON document the structured targets build from fuzzer bytes (``FuzzJSONWriter`` spells
/// it out in many equivalent ways).
package enum FuzzJSON {
    /// Members in order; a repeated key is allowed (readers keep the last).
    case object([FuzzJSON.Member])
    case array([FuzzJSON])
    case string(String)
    case number(FuzzNumber)
    case bool(Bool)
    case null

    package struct Member {
        package var key: String
        package var value: FuzzJSON
    }

    /// Characters the strings are drawn from: plain text, the characters JSON must escape, and
    /// multi-byte UTF-8 (two, three and four bytes, a line separator, NUL).
    static let alphabet: [Character] = [
        "a", "b", "z", "A", "0", "9", " ", "_", "-", ":", "/", "\"", "\\", "\n", "\r", "\t", "\u{0}", "\u{1}", "\u{8}",
        "\u{C}", "\u{1F}", "\u{7F}", "é", "ß", "日", "本", "\u{2028}", "\u{FFFD}", "\u{1F600}", "e\u{301}", "{", "}",
        "[", "]", ",", "'",
    ]

    /// A string of up to `maxLength` characters.
    static func string(_ input: inout FuzzInput, maxLength: Int = 12) -> String {
        let count = input.int(below: maxLength + 1)
        var text = ""
        for _ in 0..<count { text.append(input.pick(Self.alphabet)) }
        return text
    }

    /// Any value, nested at most `depth` levels.
    static func value(_ input: inout FuzzInput, depth: Int) -> FuzzJSON {
        switch input.int(below: depth > 0 ? 8 : 6) {
        case 0: return .null
        case 1: return .bool(input.bool())
        case 2, 3: return .number(FuzzNumber(&input))
        case 4, 5: return .string(Self.string(&input))
        case 6:
            let count = input.int(below: 4)
            return .array((0..<count).map { _ in Self.value(&input, depth: depth - 1) })
        default:
            let count = input.int(below: 4)
            return .object(
                (0..<count).map { _ in
                    FuzzJSON.Member(key: Self.string(&input, maxLength: 4), value: Self.value(&input, depth: depth - 1))
                }
            )
        }
    }

    /// The document with each object's repeated keys reduced to the last one, in first-seen
    /// order: what a reader that keeps the last value sees. Keys are compared as JSON does,
    /// byte for byte (Swift's `==` would merge `é` and `e\u{301}`).
    package var lastWins: FuzzJSON {
        switch self {
        case .object(let members):
            var order: [String] = []
            var values: [[UInt8]: FuzzJSON] = [:]
            for member in members {
                let key = Array(member.key.utf8)
                if values[key] == nil { order.append(member.key) }
                values[key] = member.value.lastWins
            }
            return .object(
                order.compactMap { key in values[Array(key.utf8)].map { FuzzJSON.Member(key: key, value: $0) } }
            )
        case .array(let elements):
            return .array(elements.map(\.lastWins))
        default:
            return self
        }
    }
}

/// A JSON number as an exact decimal: `±digits × 10^exponent`.
package struct FuzzNumber {
    package var negative: Bool
    /// The significand's decimal digits, no leading zero (`[0]` for zero).
    package var digits: [UInt8]
    package var exponent: Int

    package init(negative: Bool, digits: [UInt8], exponent: Int) {
        self.negative = negative
        self.digits = digits
        self.exponent = exponent
    }

    /// Mostly small integers and short decimals (what requests hold), sometimes long or far out.
    init(_ input: inout FuzzInput) {
        let length: Int
        switch input.int(below: 8) {
        case 0...3: length = 1 + input.int(below: 3)
        case 4...6: length = 1 + input.int(below: 8)
        default: length = 1 + input.int(below: 20)
        }
        var digits: [UInt8] = []
        for index in 0..<length {
            let digit = UInt8(input.int(below: 10))
            digits.append(index == 0 && digit == 0 && length > 1 ? 1 : digit)
        }
        if digits.count == 1 && digits[0] == 0 { digits = [0] }
        self.negative = input.oneIn(4)
        switch input.int(below: 8) {
        case 0...3: self.exponent = 0
        case 4...6: self.exponent = -input.int(below: 6)
        default: self.exponent = input.int(below: 40) - 20
        }
        self.digits = digits
    }

    package var isZero: Bool { self.digits.allSatisfy { $0 == 0 } }

    /// An integer of 16 digits or more: written as one, the canonical form keeps its exact digits
    /// (``CanonicalJSON``), while its other spellings go through `Double`.
    package var isLongInteger: Bool {
        let trailingZeros = self.digits.reversed().prefix { $0 == 0 }.count
        let exponent = self.exponent + trailingZeros
        return !self.isZero && exponent >= 0 && self.digits.count - trailingZeros + exponent >= 16
    }
}
