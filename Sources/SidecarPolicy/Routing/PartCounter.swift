/// Numbered items, bullet lines and question marks: how many things the prompt asks for.
///
/// Fed a text in pieces (`count(in:)`, `lineBreak()`), it counts what one pass over the whole
/// text would: each `?`, and a `-`, `*`, `•` or run of digits among the blanks opening a line.
/// Letters count the same in either case, so the text need not be lower-cased.
package struct PartCounter {
    private(set) var parts = 0
    /// Only spaces, tabs and digits since the last line break (or the start).
    private var atLineStart = true
    private var previousWasDigit = false

    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let lineBreaks = UInt64(UInt8(ascii: "\n")) &* ones
    private static let questionMarks = UInt64(UInt8(ascii: "?")) &* ones

    /// The high bit of each byte of `word` that is zero (exactly: no false positives).
    private static func zeroBytes(_ word: UInt64) -> UInt64 {
        ~(((word & (0x7F &* ones)) &+ 0x7F &* ones) | word) & (0x80 &* ones)
    }

    /// A line break between two pieces of text.
    package mutating func lineBreak() {
        self.atLineStart = true
        self.previousWasDigit = false
    }

    /// Counts the parts in `text`, continuing the line the previous piece ended in.
    package mutating func count(in text: UnsafeBufferPointer<UInt8>) {
        guard let base = text.baseAddress else { return }
        var parts = self.parts
        defer { self.parts = parts }
        var index = 0
        while index < text.count {
            if self.atLineStart {
                let byte = text[index]
                let isDigit = byte &- UInt8(ascii: "0") < 10
                if byte == UInt8(ascii: "?") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "*") {
                    parts += 1
                } else if byte == 0xE2, index + 2 < text.count, text[index + 1] == 0x80, text[index + 2] == 0xA2 {
                    parts += 1  // "•"
                } else if isDigit && !self.previousWasDigit {
                    parts += 1
                }
                if byte != UInt8(ascii: "\n") && byte != UInt8(ascii: " ") && byte != UInt8(ascii: "\t") && !isDigit {
                    self.atLineStart = false
                }
                self.previousWasDigit = isDigit
                index += 1
                continue
            }
            // Within a line only question marks and the next line break matter: eight bytes at a time.
            while index < text.count - 7 {
                let word = UInt64(
                    littleEndian: UnsafeRawPointer(base).loadUnaligned(fromByteOffset: index, as: UInt64.self)
                )
                if Self.zeroBytes(word ^ Self.lineBreaks) != 0 { break }
                // A one in each question mark's byte: multiplying sums them into the top byte.
                let questions = Self.zeroBytes(word ^ Self.questionMarks) >> 7
                parts &+= Int(truncatingIfNeeded: (questions &* Self.ones) >> 56)
                index &+= 8
            }
            while index < text.count {
                let byte = text[index]
                index += 1
                if byte == UInt8(ascii: "?") {
                    parts += 1
                } else if byte == UInt8(ascii: "\n") {
                    self.lineBreak()
                    break
                }
            }
        }
    }
}
