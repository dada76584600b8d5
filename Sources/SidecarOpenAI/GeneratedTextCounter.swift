/// Counts the bytes of generated text in OpenAI response JSON (a whole answer or one stream
/// chunk) without decoding it: the string values of `content`, `text` and `arguments` members
/// (chat messages and deltas, legacy completions, tool calls). Escape sequences count as one
/// byte. It is the basis of a cost estimate when an upstream reports no `usage`.
package enum GeneratedTextCounter {
    private static let keys: [[UInt8]] = [Array("content".utf8), Array("text".utf8), Array("arguments".utf8)]

    package static func count(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var total = 0
        var index = 0
        let end = bytes.count
        let quote = UInt8(ascii: "\"")
        while index < end {
            guard bytes[index] == quote else {
                index += 1
                continue
            }
            // A string starts here: is it one of the keys, followed by `:` and a string value?
            guard let keyEnd = Self.matchKey(bytes, at: index + 1) else {
                index = Self.skipString(bytes, from: index + 1)
                continue
            }
            var cursor = Self.skipSpace(bytes, from: keyEnd + 1)
            guard cursor < end, bytes[cursor] == UInt8(ascii: ":") else {
                index = keyEnd + 1
                continue
            }
            cursor = Self.skipSpace(bytes, from: cursor + 1)
            guard cursor < end, bytes[cursor] == quote else {
                index = cursor
                continue
            }
            var length = 0
            cursor += 1
            while cursor < end && bytes[cursor] != quote {
                cursor += bytes[cursor] == UInt8(ascii: "\\") ? Self.escapeLength(bytes, at: cursor) : 1
                length += 1
            }
            total += length
            index = cursor + 1
        }
        return total
    }

    package static func count(_ text: String) -> Int {
        var text = text
        return text.withUTF8 { self.count($0) }
    }

    /// The index of the closing quote when a key from ``keys`` starts at `start`.
    private static func matchKey(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> Int? {
        for key in self.keys where start + key.count < bytes.count {
            var matches = true
            for offset in 0..<key.count where bytes[start + offset] != key[offset] {
                matches = false
                break
            }
            if matches && bytes[start + key.count] == UInt8(ascii: "\"") { return start + key.count }
        }
        return nil
    }

    /// The index after the string that starts at `start` (just after its opening quote).
    private static func skipString(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var index = start
        while index < bytes.count && bytes[index] != UInt8(ascii: "\"") {
            index += bytes[index] == UInt8(ascii: "\\") ? 2 : 1
        }
        return index + 1
    }

    private static func skipSpace(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var index = start
        while index < bytes.count,
            bytes[index] == 0x20 || bytes[index] == 0x09 || bytes[index] == 0x0A
                || bytes[index] == 0x0D
        {
            index += 1
        }
        return index
    }

    /// `\uXXXX` is six bytes of JSON for one character; other escapes are two.
    private static func escapeLength(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Int {
        index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "u") ? 6 : 2
    }
}
