/// Finds the constructs that TOMLKit's toml++ 3.4 does not survive, so `sidecar.conf` reports
/// them as errors instead of the process aborting. toml++ asserts preconditions it does not
/// check (debug and SwiftPM release builds abort; with `NDEBUG` it would be undefined
/// behaviour):
///
/// - a table header whose name does not start with a key: `[é]`, `[=]`, `[[[a]]]`, a `[` at
///   the end of a line (fixed upstream, marzer/tomlplusplus#301, not yet in TOMLKit);
/// - a date followed by `T` and no time (`1979-05-27Tx:`), or by a space and a lone digit
///   (`1979-05-27 2]`, `1979-05-27 2` at the end of the file), in a value;
/// - where an array expects an element, a `}` or a Unicode line break (U+2028, U+2029,
///   U+0085): refused anywhere outside strings and comments.
///
/// All are invalid TOML, so refusing them changes nothing else. The scan follows what can
/// span lines (arrays, inline tables, multi-line strings), skips comments and strings, and
/// tells keys from values. Found by the `config` fuzz target.
enum TOMLParserGuard {
    struct Finding: Equatable {
        /// 1-based.
        var line: Int
        var reason: String
    }

    static func firstUnsafeConstruct(in text: String) -> Finding? {
        var scanner = Scanner(bytes: Array(text.utf8))
        return scanner.run()
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        var line = 1
        /// Open values: `true` for an inline table, `false` for an array.
        var open: [Bool] = []
        /// Only white space so far on this line, outside any value.
        var atLineStart = true
        /// Reading a key (before its `=`), where `1979-05-27T` is a bare key.
        var inKey = true

        init(bytes: [UInt8]) {
            self.bytes = bytes
            // toml++ skips a byte order mark.
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { self.index = 3 }
        }

        mutating func run() -> Finding? {
            while self.index < self.bytes.count {
                let byte = self.bytes[self.index]
                switch byte {
                case UInt8(ascii: "\n"):
                    self.line += 1
                    if self.open.isEmpty {
                        self.atLineStart = true
                        self.inKey = true
                    }
                    self.index += 1
                    continue
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                    self.index += 1
                    continue
                case UInt8(ascii: "#"):
                    self.skipToLineEnd()
                    continue
                case UInt8(ascii: "\""), UInt8(ascii: "'"):
                    self.skipString(quote: byte)
                case UInt8(ascii: "[") where self.open.isEmpty && self.atLineStart:
                    guard self.headerStartsWithKey() else {
                        return Finding(line: self.line, reason: "a table header must start with a name")
                    }
                    // The rest of the header line holds no value that could span lines.
                    self.skipToLineEnd()
                case UInt8(ascii: "="):
                    self.inKey = false
                    self.index += 1
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    self.open.append(byte == UInt8(ascii: "{"))
                    self.inKey = byte == UInt8(ascii: "{")
                    self.index += 1
                case UInt8(ascii: "}") where self.open.last == false:
                    return Finding(line: self.line, reason: "an array must end with ]")
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    _ = self.open.popLast()
                    self.index += 1
                case 0xC2 where self.isUnicodeLineBreak(),
                    0xE2 where self.isUnicodeLineBreak():
                    return Finding(line: self.line, reason: "a Unicode line break outside a string")
                case UInt8(ascii: ","):
                    self.inKey = self.open.last == true
                    self.index += 1
                case UInt8(ascii: "0")...UInt8(ascii: "9") where !self.inKey:
                    if self.isDateWithoutTime() {
                        return Finding(line: self.line, reason: "a date-time needs a time after its T")
                    }
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

        /// At a digit in a value: `DDDD-DD-DD` then `T` (or `t`) and anything but a digit; or a
        /// ten-character token shaped like a date (toml++ counts characters, not bytes, and skips
        /// `_`) then a space, one digit and anything but a digit (toml++ reads on past the end of
        /// the file). Neither can start a valid value.
        private func isDateWithoutTime() -> Bool {
            func isDigit(_ position: Int) -> Bool {
                position < self.bytes.count && self.bytes[position] >= UInt8(ascii: "0")
                    && self.bytes[position] <= UInt8(ascii: "9")
            }
            let start = self.index
            if [0, 1, 2, 3, 5, 6, 8, 9].allSatisfy({ isDigit(start + $0) }), start + 11 < self.bytes.count,
                self.bytes[start + 4] == UInt8(ascii: "-"), self.bytes[start + 7] == UInt8(ascii: "-"),
                self.bytes[start + 10] | 0x20 == UInt8(ascii: "t"), !isDigit(start + 11)
            {
                return true
            }
            var token: [UInt8] = []
            var cursor = start
            while cursor < self.bytes.count, token.count <= 10, !Self.endsValue(self.bytes[cursor]) {
                // toml++ counts characters: a UTF-8 continuation byte adds none.
                let byte = self.bytes[cursor]
                if byte != UInt8(ascii: "_") && byte & 0xC0 != 0x80 { token.append(byte) }
                cursor += 1
            }
            return token.count == 10 && token[4] == UInt8(ascii: "-") && token[7] == UInt8(ascii: "-")
                && cursor < self.bytes.count && self.bytes[cursor] == UInt8(ascii: " ") && isDigit(cursor + 1)
                && !isDigit(cursor + 2)
        }

        /// toml++'s value terminators, as far as ASCII goes (other white space is refused anyway).
        private static func endsValue(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: " "), 0x09...0x0D, UInt8(ascii: "]"), UInt8(ascii: "}"), UInt8(ascii: ","),
                UInt8(ascii: "#"):
                return true
            default:
                return false
            }
        }

        /// U+0085 (`C2 85`), U+2028 or U+2029 (`E2 80 A8`, `E2 80 A9`) at the index.
        private func isUnicodeLineBreak() -> Bool {
            let rest = self.bytes[self.index...]
            return rest.starts(with: [0xC2, 0x85]) || rest.starts(with: [0xE2, 0x80, 0xA8])
                || rest.starts(with: [0xE2, 0x80, 0xA9])
        }

        private func skipBlanks(_ cursor: inout Int) {
            while cursor < self.bytes.count && (self.bytes[cursor] == UInt8(ascii: " ") || self.bytes[cursor] == 0x09) {
                cursor += 1
            }
        }

        private mutating func skipToLineEnd() {
            while self.index < self.bytes.count && self.bytes[self.index] != UInt8(ascii: "\n") {
                self.index += 1
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
