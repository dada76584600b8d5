/// Finds table headers whose name does not start with a key (`[é]`, `[=]`, `[[[a]]]`, `[`
/// at the end of a line), which TOMLKit's toml++ 3.4 does not survive: it asserts (debug
/// builds abort) or assumes (undefined behaviour in release builds) that a key starts there.
/// Fixed upstream in toml++ (marzer/tomlplusplus#301); until TOMLKit ships it, such a file is
/// refused before it reaches the parser. Found by the `config` fuzz target.
///
/// A header is a `[` that opens a line outside any value; the scan follows what can span lines
/// (arrays, inline tables, multi-line strings) and skips comments and strings.
enum TOMLHeaderCheck {
    /// The 1-based line of the first such header, if any.
    static func malformedHeaderLine(in text: String) -> Int? {
        var scanner = Scanner(bytes: Array(text.utf8))
        return scanner.firstMalformedHeader()
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        var line = 1
        /// Open `[` and `{` of values.
        var depth = 0
        /// Only white space so far on this line (and not inside a value).
        var atLineStart = true

        init(bytes: [UInt8]) {
            self.bytes = bytes
            // toml++ skips a byte order mark.
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { self.index = 3 }
        }

        mutating func firstMalformedHeader() -> Int? {
            while self.index < self.bytes.count {
                let byte = self.bytes[self.index]
                switch byte {
                case UInt8(ascii: "\n"):
                    self.line += 1
                    if self.depth == 0 { self.atLineStart = true }
                    self.index += 1
                    continue
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                    self.index += 1
                    continue
                case UInt8(ascii: "#"):
                    while self.index < self.bytes.count && self.bytes[self.index] != UInt8(ascii: "\n") {
                        self.index += 1
                    }
                    continue
                case UInt8(ascii: "\""), UInt8(ascii: "'"):
                    self.skipString(quote: byte)
                case UInt8(ascii: "[") where self.depth == 0 && self.atLineStart:
                    if !self.headerStartsWithKey() { return self.line }
                    // The rest of the header line holds no value that could span lines.
                    while self.index < self.bytes.count && self.bytes[self.index] != UInt8(ascii: "\n") {
                        self.index += 1
                    }
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    self.depth += 1
                    self.index += 1
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    self.depth = max(0, self.depth - 1)
                    self.index += 1
                default:
                    self.index += 1
                }
                self.atLineStart = false
            }
            return nil
        }

        /// At a header's `[`: what toml++ reads as its name starts with a bare key character or
        /// a quote (or is `]`, or the end, which toml++ reports as errors itself).
        private func headerStartsWithKey() -> Bool {
            var cursor = self.index + 1
            self.skipBlanks(&cursor)
            if cursor < self.bytes.count && self.bytes[cursor] == UInt8(ascii: "[") {
                cursor += 1
                self.skipBlanks(&cursor)
            }
            guard cursor < self.bytes.count else { return true }
            switch self.bytes[cursor] {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "\""),
                UInt8(ascii: "'"), UInt8(ascii: "]"):
                return true
            default:
                return false
            }
        }

        private func skipBlanks(_ cursor: inout Int) {
            while cursor < self.bytes.count && (self.bytes[cursor] == UInt8(ascii: " ") || self.bytes[cursor] == 0x09) {
                cursor += 1
            }
        }

        /// Past a basic or literal string, one-line or multi-line (`"""`, `'''`), counting lines.
        private mutating func skipString(quote: UInt8) {
            let multiLine =
                self.index + 2 < self.bytes.count && self.bytes[self.index + 1] == quote
                && self.bytes[self.index + 2] == quote
            self.index += multiLine ? 3 : 1
            while self.index < self.bytes.count {
                let byte = self.bytes[self.index]
                if byte == UInt8(ascii: "\\") && quote == UInt8(ascii: "\"") {
                    if self.index + 1 < self.bytes.count && self.bytes[self.index + 1] == UInt8(ascii: "\n") {
                        self.line += 1
                    }
                    self.index += 2
                    continue
                }
                if byte == UInt8(ascii: "\n") {
                    // A one-line string ends at the line's end (unterminated: toml++ reports it).
                    guard multiLine else { return }
                    self.line += 1
                }
                if byte == quote {
                    if !multiLine {
                        self.index += 1
                        return
                    }
                    if self.index + 2 < self.bytes.count && self.bytes[self.index + 1] == quote
                        && self.bytes[self.index + 2] == quote
                    {
                        // Up to two more quotes belong to the string (`""""` ends with one in it).
                        self.index += 3
                        var extra = 0
                        while extra < 2 && self.index < self.bytes.count && self.bytes[self.index] == quote {
                            self.index += 1
                            extra += 1
                        }
                        return
                    }
                }
                self.index += 1
            }
        }
    }
}
