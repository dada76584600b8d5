import CSidecarKernels

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
            // Within a line only question marks and the next line break matter.
            var questions = 0
            index += sidecar_line_end(base + index, text.count - index, &questions, UInt8(ascii: "?"))
            parts &+= questions
            if index < text.count {
                index += 1
                self.lineBreak()
            }
        }
    }
}
