import NIOCore

/// Finds the byte ranges of a JSON object's top-level members without decoding the document.
///
/// The sidecar rewrites `model` (and sets `stream_options`) by splicing bytes, so fields it does
/// not know stay exactly as the client sent them. The scanner is a structural pass: it assumes
/// the document was already validated (the decode stage does that) and returns `nil` on
/// anything that is not an object.
package struct JSONObjectScanner {
    /// One top-level member: its key (unescaped) and value range.
    package struct Member {
        package var key: String
        package var keyRange: Range<Int>
        package var valueRange: Range<Int>
    }

    /// Top-level members of the object in `buffer`'s readable bytes; ranges are offsets from
    /// the reader index.
    package static func members(in buffer: ByteBuffer) -> [Member]? {
        buffer.withUnsafeReadableBytes { raw in
            Self.scan(raw.assumingMemoryBound(to: UInt8.self))
        }
    }

    package static func scan(_ buffer: UnsafeBufferPointer<UInt8>) -> [Member]? {
        var members: [Member] = []
        let isObject = Self.forEachMember(buffer) { key, keyRange, valueRange in
            // `"mod\u0065l"` is `model` to every JSON reader, so to the rewriter too.
            let unescaped =
                key.contains(UInt8(ascii: "\\"))
                ? OpenAIRequestParser.unescaped(UnsafeBufferPointer(rebasing: buffer[keyRange])) : nil
            let key = unescaped ?? String(decoding: key, as: UTF8.self)
            members.append(Member(key: key, keyRange: keyRange, valueRange: valueRange))
        }
        return isObject ? members : nil
    }

    /// Calls `body` with each top-level member's key bytes (between the quotes, escapes as
    /// written), the key's range (quotes included) and the value's range, in document order,
    /// without allocating. `false` when `buffer` is not an object.
    package static func forEachMember(
        _ buffer: UnsafeBufferPointer<UInt8>,
        _ body: (_ key: UnsafeBufferPointer<UInt8>, _ keyRange: Range<Int>, _ valueRange: Range<Int>) -> Void
    ) -> Bool {
        var index = Self.skipSpace(buffer, 0)
        guard index < buffer.count, buffer[index] == UInt8(ascii: "{") else { return false }
        index += 1
        while true {
            index = Self.skipSpace(buffer, index)
            guard index < buffer.count else { return false }
            if buffer[index] == UInt8(ascii: "}") { return true }
            if buffer[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard buffer[index] == UInt8(ascii: "\"") else { return false }
            let keyStart = index
            guard let keyEnd = Self.skipString(buffer, index) else { return false }
            index = Self.skipSpace(buffer, keyEnd)
            guard index < buffer.count, buffer[index] == UInt8(ascii: ":") else { return false }
            index = Self.skipSpace(buffer, index + 1)
            let valueStart = index
            guard let valueEnd = Self.skipValue(buffer, index) else { return false }
            body(
                UnsafeBufferPointer(rebasing: buffer[(keyStart + 1)..<(keyEnd - 1)]),
                keyStart..<keyEnd,
                valueStart..<valueEnd
            )
            index = valueEnd
        }
    }

    /// Calls `body` with the range of each element of the array in `buffer`, in order, without
    /// allocating. `false` when `buffer` is not an array (white space around it is allowed).
    package static func forEachElement(
        _ buffer: UnsafeBufferPointer<UInt8>,
        _ body: (_ valueRange: Range<Int>) -> Void
    ) -> Bool {
        var index = Self.skipSpace(buffer, 0)
        guard index < buffer.count, buffer[index] == UInt8(ascii: "[") else { return false }
        index += 1
        while true {
            index = Self.skipSpace(buffer, index)
            guard index < buffer.count else { return false }
            if buffer[index] == UInt8(ascii: "]") { return true }
            if buffer[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard let end = Self.skipValue(buffer, index), end > index else { return false }
            body(index..<end)
            index = end
        }
    }

    private static func skipSpace(_ buffer: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int {
        var index = start
        while index < buffer.count {
            switch buffer[index] {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): index += 1
            default: return index
            }
        }
        return index
    }

    /// Index just past the closing quote of the string starting at `start`.
    private static func skipString(_ buffer: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        var index = start + 1
        while index < buffer.count {
            switch buffer[index] {
            case UInt8(ascii: "\\"): index += 2
            case UInt8(ascii: "\""): return index + 1
            default: index += 1
            }
        }
        return nil
    }

    /// Index just past the value starting at `start` (string, number, literal, object or array).
    private static func skipValue(_ buffer: UnsafeBufferPointer<UInt8>, _ start: Int) -> Int? {
        guard start < buffer.count else { return nil }
        switch buffer[start] {
        case UInt8(ascii: "\""):
            return Self.skipString(buffer, start)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            var index = start
            while index < buffer.count {
                switch buffer[index] {
                case UInt8(ascii: "\""):
                    guard let end = Self.skipString(buffer, index) else { return nil }
                    index = end
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return index + 1 }
                default: break
                }
                index += 1
            }
            return nil
        default:
            var index = start
            while index < buffer.count {
                switch buffer[index] {
                case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), UInt8(ascii: " "), UInt8(ascii: "\n"),
                    UInt8(ascii: "\r"), UInt8(ascii: "\t"):
                    return index
                default: index += 1
                }
            }
            return index
        }
    }
}
