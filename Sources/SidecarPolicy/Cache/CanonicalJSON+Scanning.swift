#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension CanonicalJSON.Writer {
    /// The end of the string at `index` (after its closing quote) when it holds no escape and
    /// no control character; `nil` otherwise (then ``string(at:into:)`` reads it).
    func plainStringEnd(at index: Int) -> Int? {
        guard let quote = self.find(UInt8(ascii: "\""), from: index + 1), let base = self.input.baseAddress else {
            return nil
        }
        var cursor = index + 1
        // Sixteen bytes at a time, then one by one.
        let controlBound = SIMD16<UInt8>(repeating: 0x20)
        let backslash = SIMD16<UInt8>(repeating: UInt8(ascii: "\\"))
        while cursor + 16 <= quote {
            let bytes = UnsafeRawPointer(base + cursor).loadUnaligned(as: SIMD16<UInt8>.self)
            if any((bytes .< controlBound) .| (bytes .== backslash)) { return nil }
            cursor += 16
        }
        while cursor < quote {
            let byte = self.input[cursor]
            if byte == UInt8(ascii: "\\") || byte < 0x20 { return nil }
            cursor += 1
        }
        return quote + 1
    }

    /// Whether the key at `range` of ``keys`` is `name`.
    @inline(__always)
    func key(_ range: Range<Int>, is name: [UInt8]) -> Bool {
        range.count == name.count
            && self.keys.withUnsafeBufferPointer { keys in
                name.withUnsafeBufferPointer { name in
                    guard let keys = keys.baseAddress, let name = name.baseAddress else { return range.isEmpty }
                    return memcmp(keys + range.lowerBound, name, range.count) == 0
                }
            }
    }

    /// The bytewise order of two keys of ``keys``, a prefix first (as `lexicographicallyPrecedes`
    /// orders them): negative, zero (equal) or positive.
    @inline(__always)
    func order(_ first: Range<Int>, _ second: Range<Int>) -> Int {
        self.keys.withUnsafeBufferPointer { keys in
            let common = min(first.count, second.count)
            guard let base = keys.baseAddress, common > 0 else { return first.count - second.count }
            let order = Int(memcmp(base + first.lowerBound, base + second.lowerBound, common))
            return order != 0 ? order : first.count - second.count
        }
    }

    /// The index of the first `byte` at or after `start` (glibc's vectorised `memchr`).
    func find(_ byte: UInt8, from start: Int) -> Int? {
        guard start < self.input.count, let base = self.input.baseAddress else { return nil }
        guard let found = memchr(base + start, Int32(byte), self.input.count - start) else { return nil }
        return base.distance(to: found.assumingMemoryBound(to: UInt8.self))
    }

    /// An object's members, sorted by key, the last of a repeated key kept.
    mutating func members(at index: Int) -> ([CanonicalJSON.Member], Int)? {
        var members: [CanonicalJSON.Member] = []
        members.reserveCapacity(8)
        var cursor = self.skipSpace(index + 1)
        guard cursor < self.input.count else { return nil }
        if self.input[cursor] != UInt8(ascii: "}") {
            while true {
                guard cursor < self.input.count, self.input[cursor] == UInt8(ascii: "\"") else { return nil }
                let keyStart = self.keys.count
                let keyEnd: Int
                if let end = self.plainStringEnd(at: cursor) {
                    self.keys.append(contentsOf: UnsafeBufferPointer(rebasing: self.input[(cursor + 1)..<(end - 1)]))
                    keyEnd = end
                } else {
                    // Into a buffer of its own: `&self.keys` here would copy every key read so far
                    // (`string` reads `self`), quadratic in the number of keys.
                    var decoded: [UInt8] = []
                    guard let end = self.string(at: cursor, into: &decoded) else { return nil }
                    self.keys.append(contentsOf: decoded)
                    keyEnd = end
                }
                let key = keyStart..<self.keys.count
                cursor = self.skipSpace(keyEnd)
                guard cursor < self.input.count, self.input[cursor] == UInt8(ascii: ":") else { return nil }
                let valueStart = self.skipSpace(cursor + 1)
                guard let valueEnd = self.skip(at: valueStart, depth: 1) else { return nil }
                members.append(CanonicalJSON.Member(key: key, value: valueStart..<valueEnd))
                cursor = self.skipSpace(valueEnd)
                guard cursor < self.input.count else { return nil }
                if self.input[cursor] == UInt8(ascii: "}") { break }
                guard self.input[cursor] == UInt8(ascii: ",") else { return nil }
                cursor = self.skipSpace(cursor + 1)
            }
        }
        // A stable sort (by insertion when few, so an object of many members is not quadratic),
        // then the last of equal keys kept.
        if members.count > 32 {
            members = members.enumerated().sorted { first, second in
                let order = self.order(first.element.key, second.element.key)
                return order != 0 ? order < 0 : first.offset < second.offset
            }.map(\.element)
        } else if members.count > 1 {
            for index in 1..<members.count {
                var position = index
                while position > 0,
                    self.order(members[position].key, members[position - 1].key) < 0
                {
                    members.swapAt(position, position - 1)
                    position -= 1
                }
            }
        }
        if members.count > 1 {
            var kept = 0
            for index in 0..<members.count {
                if kept > 0, self.order(members[kept - 1].key, members[index].key) == 0 {
                    members[kept - 1] = members[index]
                } else {
                    members.swapAt(kept, index)
                    kept += 1
                }
            }
            members.removeLast(members.count - kept)
        }
        return (members, cursor + 1)
    }

    /// An array's element ranges.
    func elements(at index: Int) -> [Range<Int>]? {
        var elements: [Range<Int>] = []
        var cursor = self.skipSpace(index + 1)
        guard cursor < self.input.count else { return nil }
        if self.input[cursor] == UInt8(ascii: "]") { return elements }
        while true {
            guard let end = self.skip(at: cursor, depth: 2) else { return nil }
            elements.append(cursor..<end)
            cursor = self.skipSpace(end)
            guard cursor < self.input.count else { return nil }
            if self.input[cursor] == UInt8(ascii: "]") { return elements }
            guard self.input[cursor] == UInt8(ascii: ",") else { return nil }
            cursor = self.skipSpace(cursor + 1)
        }
    }

    /// The end of the value at `index` (structure only: the writing pass validates the rest).
    func skip(at index: Int, depth: Int) -> Int? {
        guard depth <= CanonicalJSON.maximumDepth, index < self.input.count else { return nil }
        switch self.input[index] {
        case UInt8(ascii: "\""):
            var cursor = index + 1
            while let quote = self.find(UInt8(ascii: "\""), from: cursor) {
                // Escaped when an odd number of backslashes precede it.
                var backslashes = 0
                while quote - backslashes - 1 > index, self.input[quote - backslashes - 1] == UInt8(ascii: "\\") {
                    backslashes += 1
                }
                if backslashes % 2 == 0 { return quote + 1 }
                cursor = quote + 1
            }
            return nil
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let close = self.input[index] == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            var cursor = self.skipSpace(index + 1)
            guard cursor < self.input.count else { return nil }
            if self.input[cursor] == close { return cursor + 1 }
            while true {
                if close == UInt8(ascii: "}") {
                    guard let keyEnd = self.skip(at: cursor, depth: depth + 1) else { return nil }
                    cursor = self.skipSpace(keyEnd)
                    guard cursor < self.input.count, self.input[cursor] == UInt8(ascii: ":") else { return nil }
                    cursor = self.skipSpace(cursor + 1)
                }
                guard let end = self.skip(at: cursor, depth: depth + 1) else { return nil }
                cursor = self.skipSpace(end)
                guard cursor < self.input.count else { return nil }
                if self.input[cursor] == close { return cursor + 1 }
                guard self.input[cursor] == UInt8(ascii: ",") else { return nil }
                cursor = self.skipSpace(cursor + 1)
            }
        default:
            var cursor = index
            while cursor < self.input.count {
                switch self.input[cursor] {
                case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x09, 0x0A, 0x0D:
                    return cursor > index ? cursor : nil
                default: cursor += 1
                }
            }
            return cursor > index ? cursor : nil
        }
    }

    func decodedString(_ range: Range<Int>) -> [UInt8]? {
        guard self.input[range.lowerBound] == UInt8(ascii: "\"") else { return nil }
        var decoded: [UInt8] = []
        return self.string(at: range.lowerBound, into: &decoded) == nil ? nil : decoded
    }

    /// Unescapes the string starting at the quote at `index`; returns the index after it.
    func string(at index: Int, into decoded: inout [UInt8]) -> Int? {
        var cursor = index + 1
        while cursor < self.input.count {
            let byte = self.input[cursor]
            if byte == UInt8(ascii: "\"") { return cursor + 1 }
            if byte < 0x20 { return nil }
            if byte != UInt8(ascii: "\\") {
                decoded.append(byte)
                cursor += 1
                continue
            }
            guard cursor + 1 < self.input.count else { return nil }
            let escape = self.input[cursor + 1]
            cursor += 2
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
            case UInt8(ascii: "b"): decoded.append(0x08)
            case UInt8(ascii: "f"): decoded.append(0x0C)
            case UInt8(ascii: "n"): decoded.append(0x0A)
            case UInt8(ascii: "r"): decoded.append(0x0D)
            case UInt8(ascii: "t"): decoded.append(0x09)
            case UInt8(ascii: "u"):
                guard var scalar = self.hex4(at: cursor) else { return nil }
                cursor += 4
                if (0xD800..<0xDC00).contains(scalar), cursor + 6 <= self.input.count,
                    self.input[cursor] == UInt8(ascii: "\\"), self.input[cursor + 1] == UInt8(ascii: "u"),
                    let low = self.hex4(at: cursor + 2), (0xDC00..<0xE000).contains(low)
                {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    cursor += 6
                }
                // A lone surrogate becomes U+FFFD, as a decoder would read it.
                let value = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                decoded.append(contentsOf: Array(String(Character(value)).utf8))
            default: return nil
            }
        }
        return nil
    }

    func hex4(at index: Int) -> UInt32? {
        guard index + 4 <= self.input.count else { return nil }
        var value: UInt32 = 0
        for offset in 0..<4 {
            let byte = self.input[index + offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }
}

extension CanonicalJSON {
    /// Powers of ten a `Double` holds exactly.
    private static let exactPowersOfTen: [Double] = (0...22).map { exponent in
        (0..<exponent).reduce(1.0) { product, _ in product * 10 }
    }

    /// The value of the JSON number `bytes`, as `Double(String)` reads it. A plain decimal of up to
    /// 2^53 in its digits and 22 places (`0.7`, `2`, `-1.25`) is one exact division, correctly
    /// rounded (Clinger's fast path), with no string made; anything else goes to `Double(String)`.
    static func number(_ bytes: UnsafeBufferPointer<UInt8>) -> Double? {
        var index = 0
        let negative = index < bytes.count && bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        var mantissa: UInt64 = 0
        var places = 0
        var digits = 0
        var seenPoint = false
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "."), !seenPoint {
                seenPoint = true
            } else if byte &- UInt8(ascii: "0") < 10, mantissa < 1 << 53 / 10 {
                mantissa = mantissa * 10 + UInt64(byte &- UInt8(ascii: "0"))
                digits += 1
                if seenPoint { places += 1 }
            } else {
                return Double(String(decoding: bytes, as: UTF8.self))
            }
            index += 1
        }
        guard digits > 0, places <= 22, mantissa <= 1 << 53 else {
            return Double(String(decoding: bytes, as: UTF8.self))
        }
        let magnitude = Double(mantissa) / Self.exactPowersOfTen[places]
        return negative ? -magnitude : magnitude
    }
}
