import NIOCore

/// The JSON structure and scalars under ``OpenAIRequestParser``'s fields.
extension OpenAIRequestParser {
    // MARK: Structure

    var peek: UInt8? {
        self.index < self.bytes.count ? self.bytes[self.index] : nil
    }

    mutating func skipSpace() {
        while self.index < self.bytes.count {
            switch self.bytes[self.index] {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): self.index += 1
            default: return
            }
        }
    }

    /// Reads `{ "key": value, ... }`; `member` reads each value (positioned at it) and returns
    /// false to stop. The index must be at `{`.
    mutating func object(_ member: (inout OpenAIRequestParser, String) -> Bool) -> Bool {
        self.depth += 1
        defer { self.depth -= 1 }
        guard self.depth <= Self.maxDepth else { return false }
        self.index += 1
        self.skipSpace()
        if self.peek == UInt8(ascii: "}") {
            self.index += 1
            return true
        }
        while true {
            self.skipSpace()
            guard self.peek == UInt8(ascii: "\""), let key = self.string() else { return false }
            self.skipSpace()
            guard self.peek == UInt8(ascii: ":") else { return false }
            self.index += 1
            self.skipSpace()
            guard member(&self, key) else { return false }
            self.skipSpace()
            switch self.peek {
            case UInt8(ascii: ","): self.index += 1
            case UInt8(ascii: "}"):
                self.index += 1
                return true
            default: return false
            }
        }
    }

    /// Reads `[ value, ... ]`; `element` reads each value (positioned at it). The index must be at `[`.
    mutating func array(_ element: (inout OpenAIRequestParser) -> Bool) -> Bool {
        self.depth += 1
        defer { self.depth -= 1 }
        guard self.depth <= Self.maxDepth else { return false }
        self.index += 1
        self.skipSpace()
        if self.peek == UInt8(ascii: "]") {
            self.index += 1
            return true
        }
        while true {
            self.skipSpace()
            guard element(&self) else { return false }
            self.skipSpace()
            switch self.peek {
            case UInt8(ascii: ","): self.index += 1
            case UInt8(ascii: "]"):
                self.index += 1
                return true
            default: return false
            }
        }
    }

    /// Validates any value and moves past it.
    mutating func skipValue() -> Bool {
        guard let byte = self.peek else { return false }
        switch byte {
        case UInt8(ascii: "\""): return self.scanString(collect: false) != nil
        case UInt8(ascii: "{"): return self.object { parser, _ in parser.skipValue() }
        case UInt8(ascii: "["): return self.array { parser in parser.skipValue() }
        case UInt8(ascii: "t"): return self.literal("true")
        case UInt8(ascii: "f"): return self.literal("false")
        case UInt8(ascii: "n"): return self.literal("null")
        default: return self.number() != nil
        }
    }

    // MARK: Scalars

    mutating func takeNull() -> Bool {
        guard self.peek == UInt8(ascii: "n") else { return false }
        return self.literal("null")
    }

    mutating func literal(_ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard self.index + count <= self.bytes.count else { return false }
        let pointer = text.utf8Start
        for offset in 0..<count where self.bytes[self.index + offset] != pointer[offset] {
            return false
        }
        self.index += count
        return true
    }

    mutating func bool() -> Bool? {
        if self.peek == UInt8(ascii: "t") { return self.literal("true") ? true : nil }
        if self.peek == UInt8(ascii: "f") { return self.literal("false") ? false : nil }
        return nil
    }

    /// A JSON integer that fits `Int` (no fraction or exponent; others go to `JSONDecoder`).
    mutating func integer() -> Int? {
        let start = self.index
        guard self.number() != nil else { return nil }
        let digits = UnsafeBufferPointer(rebasing: self.bytes[start..<self.index])
        guard digits.allSatisfy({ $0 == UInt8(ascii: "-") || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) })
        else { return nil }
        return Int(String(decoding: digits, as: UTF8.self))
    }

    /// Validates a JSON number; returns its end.
    mutating func number() -> Int? {
        var index = self.index
        func digit(_ at: Int) -> Bool {
            at < self.bytes.count && self.bytes[at] >= UInt8(ascii: "0") && self.bytes[at] <= UInt8(ascii: "9")
        }
        if index < self.bytes.count && self.bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard digit(index) else { return nil }
        if self.bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while digit(index) { index += 1 }
        }
        if index < self.bytes.count && self.bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digit(index) else { return nil }
            while digit(index) { index += 1 }
        }
        if index < self.bytes.count
            && (self.bytes[index] == UInt8(ascii: "e") || self.bytes[index] == UInt8(ascii: "E"))
        {
            index += 1
            if index < self.bytes.count
                && (self.bytes[index] == UInt8(ascii: "+") || self.bytes[index] == UInt8(ascii: "-"))
            {
                index += 1
            }
            guard digit(index) else { return nil }
            while digit(index) { index += 1 }
        }
        self.index = index
        return index
    }

    mutating func string() -> String? {
        guard self.peek == UInt8(ascii: "\"") else { return nil }
        return self.scanString(collect: true)
    }

    /// Validates the string at the index (escapes, control characters, UTF-8) and moves past it;
    /// returns its unescaped value when `collect`, else "".
    mutating func scanString(collect: Bool) -> String? {
        var index = self.index + 1
        let start = index
        var hasEscapes = false
        // Fast scan: plain ASCII up to the closing quote.
        while index < self.bytes.count {
            let byte = self.bytes[index]
            if byte == UInt8(ascii: "\"") {
                self.index = index + 1
                guard collect else { return "" }
                return String(decoding: UnsafeBufferPointer(rebasing: self.bytes[start..<index]), as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x80 {
                hasEscapes = true
                break
            }
            index += 1
        }
        guard hasEscapes else { return nil }
        // Slow path: escapes and non-ASCII.
        var out: [UInt8] = []
        if collect {
            out.reserveCapacity(index - start + 16)
            out.append(contentsOf: UnsafeBufferPointer(rebasing: self.bytes[start..<index]))
        }
        while index < self.bytes.count {
            let byte = self.bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                self.index = index + 1
                return collect ? String(decoding: out, as: UTF8.self) : ""
            case UInt8(ascii: "\\"):
                guard index + 1 < self.bytes.count else { return nil }
                let escaped = self.bytes[index + 1]
                index += 2
                let simple: UInt8?
                switch escaped {
                case UInt8(ascii: "\""): simple = UInt8(ascii: "\"")
                case UInt8(ascii: "\\"): simple = UInt8(ascii: "\\")
                case UInt8(ascii: "/"): simple = UInt8(ascii: "/")
                case UInt8(ascii: "b"): simple = 0x08
                case UInt8(ascii: "f"): simple = 0x0C
                case UInt8(ascii: "n"): simple = 0x0A
                case UInt8(ascii: "r"): simple = 0x0D
                case UInt8(ascii: "t"): simple = 0x09
                case UInt8(ascii: "u"): simple = nil
                default: return nil
                }
                if let simple {
                    if collect { out.append(simple) }
                    continue
                }
                guard var scalar = self.hex4(at: index) else { return nil }
                index += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    // A high surrogate must be followed by an escaped low surrogate.
                    guard index + 1 < self.bytes.count, self.bytes[index] == UInt8(ascii: "\\"),
                        self.bytes[index + 1] == UInt8(ascii: "u"), let low = self.hex4(at: index + 2),
                        (0xDC00...0xDFFF).contains(low)
                    else { return nil }
                    index += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    return nil
                }
                if collect, let unicode = Unicode.Scalar(scalar) {
                    out.append(contentsOf: String(Character(unicode)).utf8)
                }
            case 0..<0x20:
                return nil
            case 0x80...:
                guard let length = self.utf8SequenceLength(at: index) else { return nil }
                if collect {
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: self.bytes[index..<(index + length)]))
                }
                index += length
            default:
                if collect { out.append(byte) }
                index += 1
            }
        }
        return nil
    }

    func hex4(at start: Int) -> UInt32? {
        guard start + 4 <= self.bytes.count else { return nil }
        var value: UInt32 = 0
        for offset in 0..<4 {
            let byte = self.bytes[start + offset]
            let nibble: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(nibble)
        }
        return value
    }

    /// The length of the well-formed UTF-8 sequence starting at `start`, or nil.
    func utf8SequenceLength(at start: Int) -> Int? {
        let lead = self.bytes[start]
        let length: Int
        let minimum: UInt32
        switch lead {
        case 0xC2...0xDF:
            length = 2
            minimum = 0x80
        case 0xE0...0xEF:
            length = 3
            minimum = 0x800
        case 0xF0...0xF4:
            length = 4
            minimum = 0x10000
        default: return nil
        }
        guard start + length <= self.bytes.count else { return nil }
        var scalar = UInt32(lead) & (0xFF >> UInt32(length + 1))
        for offset in 1..<length {
            let byte = self.bytes[start + offset]
            guard byte & 0xC0 == 0x80 else { return nil }
            scalar = scalar << 6 | UInt32(byte & 0x3F)
        }
        guard scalar >= minimum, scalar <= 0x10FFFF, !(0xD800...0xDFFF).contains(scalar) else { return nil }
        return length
    }
}
