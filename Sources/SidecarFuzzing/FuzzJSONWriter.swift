/// Spells a ``FuzzJSON`` document: every choice of white space, key order, string escapes and
/// number spelling below gives a document with the same meaning.
package struct FuzzJSONWriter {
    package struct Style {
        /// White space between tokens (none when false).
        package var spaced = false
        /// Members in a shuffled order instead of the document's.
        package var shuffled = false
        /// Escape characters that need no escape (`\u00e9`, `\/`, surrogate pairs).
        package var escapeFreely = false
        /// Which of a number's spellings to use (``FuzzJSONWriter/spell(_:variant:)``).
        package var numberVariant = 0
        /// Drives the choices above, per token.
        package var seed: UInt64 = 0

        package init() {}

        package init(_ input: inout FuzzInput) {
            self.spaced = input.bool()
            self.shuffled = input.bool()
            self.escapeFreely = input.bool()
            self.numberVariant = input.int(below: 8)
            self.seed = input.seed()
        }
    }

    private var random: SplitMix64
    private let style: Style
    private var out: [UInt8] = []

    private init(style: Style) {
        self.style = style
        self.random = SplitMix64(seed: style.seed)
    }

    package static func write(_ value: FuzzJSON, style: Style) -> [UInt8] {
        var writer = FuzzJSONWriter(style: style)
        writer.space()
        writer.value(value)
        writer.space()
        return writer.out
    }

    private mutating func space() {
        guard self.style.spaced else { return }
        let spaces: [[UInt8]] = [[], [0x20], [0x0A], [0x20, 0x20], [0x0D, 0x0A, 0x09], [0x09]]
        self.out += spaces[Int(self.random.next() % UInt64(spaces.count))]
    }

    private mutating func value(_ value: FuzzJSON) {
        switch value {
        case .null: self.out += Array("null".utf8)
        case .bool(let flag): self.out += Array((flag ? "true" : "false").utf8)
        case .number(let number):
            // A long integer is always written plainly (see ``FuzzNumber/isLongInteger``).
            let plain = self.style.numberVariant == 0 || number.isLongInteger
            let variant = plain ? 0 : Int(self.random.next() % 8)
            self.out += Array(Self.spell(number, variant: variant).utf8)
        case .string(let text): self.string(text)
        case .array(let elements):
            self.out.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { self.out.append(UInt8(ascii: ",")) }
                self.space()
                self.value(element)
                self.space()
            }
            self.out.append(UInt8(ascii: "]"))
        case .object(var members):
            if self.style.shuffled {
                // Only the last of a repeated key counts: shuffle the distinct keys' last members.
                guard case .object(let distinct) = FuzzJSON.object(members).lastWins else { return }
                members = distinct
                members.shuffle(using: &self.random)
            }
            self.out.append(UInt8(ascii: "{"))
            self.space()
            for (index, member) in members.enumerated() {
                if index > 0 {
                    self.out.append(UInt8(ascii: ","))
                    self.space()
                }
                self.string(member.key)
                self.space()
                self.out.append(UInt8(ascii: ":"))
                self.space()
                self.value(member.value)
                self.space()
            }
            self.out.append(UInt8(ascii: "}"))
        }
    }

    private mutating func string(_ text: String) {
        self.out.append(UInt8(ascii: "\""))
        for scalar in text.unicodeScalars {
            let free = self.style.escapeFreely && self.random.next() % 3 == 0
            switch scalar {
            case "\"": self.out += [0x5C, 0x22]
            case "\\": self.out += [0x5C, 0x5C]
            case "/" where free: self.out += [0x5C, 0x2F]
            case "\n" where !free: self.out += [0x5C, UInt8(ascii: "n")]
            case "\r" where !free: self.out += [0x5C, UInt8(ascii: "r")]
            case "\t" where !free: self.out += [0x5C, UInt8(ascii: "t")]
            case "\u{8}" where !free: self.out += [0x5C, UInt8(ascii: "b")]
            case "\u{C}" where !free: self.out += [0x5C, UInt8(ascii: "f")]
            default:
                if scalar.value < 0x20 || free {
                    self.unicodeEscape(scalar)
                } else {
                    self.out += Array(String(scalar).utf8)
                }
            }
        }
        self.out.append(UInt8(ascii: "\""))
    }

    /// `\uXXXX`, as a surrogate pair beyond the BMP; upper or lower case hex digits.
    private mutating func unicodeEscape(_ scalar: Unicode.Scalar) {
        let digits = Array((self.random.next() % 2 == 0 ? "0123456789abcdef" : "0123456789ABCDEF").utf8)
        func unit(_ value: UInt32) -> [UInt8] {
            [0x5C, UInt8(ascii: "u")] + [12, 8, 4, 0].map { digits[Int((value >> UInt32($0)) & 0xF)] }
        }
        if scalar.value >= 0x10000 {
            let value = scalar.value - 0x10000
            self.out += unit(0xD800 + (value >> 10)) + unit(0xDC00 + (value & 0x3FF))
        } else {
            self.out += unit(scalar.value)
        }
    }

    /// One spelling of `number`; every variant has the same exact value (so the same `Double`):
    /// 0 plain (`150`, `0.015`), 1 with trailing fraction zeros (`150.00`), 2 to 4 with an
    /// exponent (`1.5e2`, `15E+1`, `15000e-2`), 5 and up plain again (`-0` for a negative zero).
    package static func spell(_ number: FuzzNumber, variant: Int) -> String {
        let sign = number.negative ? "-" : ""
        var digits = number.digits
        var exponent = number.exponent
        // Normalised: no trailing zeros in the significand (they move to the exponent).
        while digits.count > 1, digits.last == 0 {
            digits.removeLast()
            exponent += 1
        }
        let text = String(decoding: digits.map { $0 + 0x30 }, as: UTF8.self)
        switch variant {
        case 1:
            return sign + Self.plain(text + "00", exponent: exponent - 2)
        case 2:
            let tail = text.dropFirst()
            return sign + text.prefix(1) + (tail.isEmpty ? "" : "." + tail) + "e" + String(exponent + tail.count)
        case 3:
            return sign + text + "E" + (exponent >= 0 ? "+" : "") + String(exponent)
        case 4:
            return sign + (number.isZero ? "0.000" : text + "000") + "e" + String(exponent - 3)
        default:
            return sign + Self.plain(text, exponent: exponent)
        }
    }

    /// `digits × 10^exponent` without an exponent (one `0` before the point at most).
    private static func plain(_ digits: String, exponent: Int) -> String {
        var digits = digits
        if exponent >= 0 {
            digits += String(repeating: "0", count: exponent)
            let trimmed = digits.drop { $0 == "0" }
            return trimmed.isEmpty ? "0" : String(trimmed)
        }
        let fraction = -exponent
        if digits.count <= fraction {
            digits = String(repeating: "0", count: fraction - digits.count + 1) + digits
        }
        let point = digits.index(digits.endIndex, offsetBy: -fraction)
        let integer = digits[..<point].drop { $0 == "0" }
        return (integer.isEmpty ? "0" : String(integer)) + "." + String(digits[point...])
    }
}
