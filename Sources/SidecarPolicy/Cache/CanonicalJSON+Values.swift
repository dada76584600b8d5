/// Values in canonical form: strings (minimal escapes), numbers (one spelling), literals.
extension CanonicalJSON.Writer {
    /// Writes the canonical value starting at `index`; returns the index after it.
    mutating func value(at index: Int, depth: Int) -> Int? {
        guard depth <= CanonicalJSON.maximumDepth, index < self.input.count else { return nil }
        switch self.input[index] {
        case UInt8(ascii: "{"):
            guard let (members, end) = self.members(at: index), self.object(members, depth: depth + 1) else {
                return nil
            }
            return end
        case UInt8(ascii: "["):
            self.output.append(UInt8(ascii: "["))
            var cursor = self.skipSpace(index + 1)
            guard cursor < self.input.count else { return nil }
            if self.input[cursor] == UInt8(ascii: "]") {
                self.output.append(UInt8(ascii: "]"))
                return cursor + 1
            }
            var first = true
            while true {
                if !first { self.output.append(UInt8(ascii: ",")) }
                first = false
                guard let end = self.value(at: cursor, depth: depth + 1) else { return nil }
                cursor = self.skipSpace(end)
                guard cursor < self.input.count else { return nil }
                if self.input[cursor] == UInt8(ascii: "]") { break }
                guard self.input[cursor] == UInt8(ascii: ",") else { return nil }
                cursor = self.skipSpace(cursor + 1)
            }
            self.output.append(UInt8(ascii: "]"))
            return cursor + 1
        case UInt8(ascii: "\""):
            // Most strings have no escapes: they are already canonical, copied in one go.
            if let end = self.plainStringEnd(at: index) {
                self.output.append(contentsOf: UnsafeBufferPointer(rebasing: self.input[index..<end]))
                return end
            }
            var decoded: [UInt8] = []
            guard let end = self.string(at: index, into: &decoded) else { return nil }
            self.writeString(decoded)
            return end
        case UInt8(ascii: "t"): return self.literal("true", at: index)
        case UInt8(ascii: "f"): return self.literal("false", at: index)
        case UInt8(ascii: "n"): return self.literal("null", at: index)
        default: return self.number(at: index)
        }
    }

    mutating func literal(_ word: StaticString, at index: Int) -> Int? {
        let count = word.utf8CodeUnitCount
        guard index + count <= self.input.count else { return nil }
        let bytes = UnsafeBufferPointer(start: word.utf8Start, count: count)
        for offset in 0..<count where self.input[index + offset] != bytes[offset] { return nil }
        self.output.append(contentsOf: bytes)
        return index + count
    }

    mutating func number(at index: Int) -> Int? {
        var cursor = index
        var integral = true
        if cursor < self.input.count, self.input[cursor] == UInt8(ascii: "-") { cursor += 1 }
        let digitsStart = cursor
        while cursor < self.input.count {
            let byte = self.input[cursor]
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                cursor += 1
            } else if byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
                || byte == UInt8(ascii: "+") || (byte == UInt8(ascii: "-") && cursor > digitsStart)
            {
                integral = false
                cursor += 1
            } else {
                break
            }
        }
        guard cursor > digitsStart else { return nil }
        // An integral literal is canonical as written (JSON has no leading zeros), but -0.
        if integral, cursor - digitsStart <= 15,
            self.input[digitsStart] != UInt8(ascii: "0") || cursor - digitsStart == 1
        {
            let negativeZero =
                cursor - index == 2 && self.input[index] == UInt8(ascii: "-")
                && self.input[digitsStart] == UInt8(ascii: "0")
            if negativeZero {
                self.output.append(UInt8(ascii: "0"))
            } else {
                self.output.append(contentsOf: UnsafeBufferPointer(rebasing: self.input[index..<cursor]))
            }
            return cursor
        }
        // A plain decimal (no exponent): its trailing fraction zeros dropped, so 0.70 is 0.7.
        // That is the shortest spelling of its `Double` (as below) when it has at most 15
        // significant digits and is not below 1e-4; others (0.00001, which is 1e-05) go on.
        if let point = (digitsStart..<cursor).first(where: { self.input[$0] == UInt8(ascii: ".") }),
            !(point..<cursor).contains(where: { self.input[$0] | 0x20 == UInt8(ascii: "e") }),
            self.isShortestDecimal(digitsStart..<cursor, point: point)
        {
            var end = cursor
            while end > point + 1, self.input[end - 1] == UInt8(ascii: "0") { end -= 1 }
            if end == point + 1 { end = point }  // 2.0 -> 2
            let negativeZero =
                self.input[index] == UInt8(ascii: "-")
                && !(digitsStart..<end).contains {
                    self.input[$0] != UInt8(ascii: "0") && self.input[$0] != UInt8(ascii: ".")
                }
            let start = negativeZero ? digitsStart : index
            self.output.append(contentsOf: UnsafeBufferPointer(rebasing: self.input[start..<end]))
            return cursor
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: self.input[index..<cursor]), as: UTF8.self)
        if integral, let value = Int64(text) {
            self.output.append(contentsOf: Array(String(value).utf8))
            return cursor
        }
        guard let value = Double(text), value.isFinite else { return nil }
        if value == value.rounded(), abs(value) < 9_007_199_254_740_992 {
            self.output.append(contentsOf: Array(String(Int64(value)).utf8))
        } else {
            self.output.append(contentsOf: Array("\(value)".utf8))
        }
        return cursor
    }

    /// Whether the plain decimal `digits` (a point at `point`, no exponent) is, without its
    /// trailing fraction zeros, the shortest decimal of its `Double` as Swift prints it: at
    /// most 15 significant digits (any two such decimals are different `Double`s) and zero or
    /// at least 1e-4 (below, Swift switches to an exponent).
    func isShortestDecimal(_ digits: Range<Int>, point: Int) -> Bool {
        var end = digits.upperBound
        while end > point + 1, self.input[end - 1] == UInt8(ascii: "0") { end -= 1 }
        guard
            let first = (digits.lowerBound..<end).first(where: {
                $0 != point && self.input[$0] != UInt8(ascii: "0")
            })
        else { return true }  // zero
        let significant = (first..<end).count(where: { $0 != point })
        return significant <= 15 && (first < point || first - point - 1 < 4)
    }

    mutating func writeString<Bytes: Collection<UInt8>>(_ decoded: Bytes) {
        if !decoded.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
            self.output.append(UInt8(ascii: "\""))
            self.output.append(contentsOf: decoded)
            self.output.append(UInt8(ascii: "\""))
            return
        }
        self.output.append(UInt8(ascii: "\""))
        for byte in decoded {
            switch byte {
            case UInt8(ascii: "\""): self.output.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): self.output.append(contentsOf: [0x5C, 0x5C])
            case 0x08: self.output.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: self.output.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0x0A: self.output.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: self.output.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: self.output.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                self.output.append(contentsOf: [
                    0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 15)],
                ])
            default: self.output.append(byte)
            }
        }
        self.output.append(UInt8(ascii: "\""))
    }
}
