/// The canonical form of a request body, for cache keys: equal requests give equal bytes
/// whatever their key order, white space, string escapes or number spelling.
///
/// - Objects: members sorted by key (bytewise, after unescaping); a repeated key keeps its last
///   value, as JSON parsers do.
/// - Strings: unescaped, then written with the minimal escapes (`\"`, `\\`, `\b \f \n \r \t`,
///   `\u00XX` for other control characters); everything else as raw UTF-8.
/// - Numbers: an integral value below 2^53 as plain digits (`1`, `1.0` and `1e0` are one
///   number), any other as the shortest decimal that reads back as the same `Double`; but an
///   integer written as one (no fraction or exponent) that fits `Int64` keeps its digits past
///   2^53, so two seeds or ids a `Double` cannot tell apart stay apart.
/// - `true`, `false`, `null` as they are; no white space anywhere.
///
/// Top-level members named in `dropping` (the ones that change the shape of an answer, not
/// the answer: `stream`, `stream_options`, `user`...) are left out. With `maskingPrompt`, the
/// prompt a semantic lookup compares (the `content` of the last `user` message, or the `prompt`
/// of a request without `messages`) is cut out: a `0x01` byte (never part of JSON) marks its
/// place in ``Result/context`` and its canonical form goes to ``Result/prompt``. Everything else
/// in the request must then match exactly for a semantic hit.
///
/// Two implementations: C (`sidecar_canonical_json` in CSidecarKernels, one reading pass and one
/// writing pass, about twice as fast) for the common documents, and this Swift one for the rest
/// (escaped keys, exponents, long numbers, deep nesting) and as the reference the `cache-key`
/// fuzz target holds the C one to.
///
/// Returns `nil` for anything that is not a JSON object or nests deeper than ``maximumDepth``:
/// such a request is not cached. The body must already be valid JSON (the decode stage checks
/// it): the scan does not check every rule (it reads `1e10.0` as a number).
import CSidecarKernels

package enum CanonicalJSON {
    package struct Result: Equatable, Sendable {
        /// The canonical document (with the prompt's place marked when it was masked).
        package var context: [UInt8]
        /// The canonical masked prompt (empty when nothing was masked).
        package var prompt: [UInt8]
        package var maskedPrompt: Bool
        /// The top-level `n` and `temperature`, when they are numbers (cacheability rules).
        package var n: Double?
        package var temperature: Double?
    }

    package static let maximumDepth = 64
    static let roleKey = Array("role".utf8)
    static let userRole = Array("user".utf8)
    static let contentKey = Array("content".utf8)
    static let messagesKey = Array("messages".utf8)
    static let promptKey = Array("prompt".utf8)
    static let nKey = Array("n".utf8)
    static let temperatureKey = Array("temperature".utf8)
    /// Marks the masked prompt's place in ``Result/context``.
    package static let promptMarker: UInt8 = 0x01

    package static func canonicalize(
        _ bytes: UnsafeBufferPointer<UInt8>,
        dropping: MemberNames = [],
        maskingPrompt: Bool = false
    ) -> Result? {
        switch Self.canonicalizeInC(bytes, dropping: dropping, maskingPrompt: maskingPrompt) {
        case .some(let result): return result
        case .none: return Self.canonicalizeInSwift(bytes, dropping: dropping, maskingPrompt: maskingPrompt)
        }
    }

    /// The C fast path (`sidecar_canonical_json`): the same result as
    /// ``canonicalizeInSwift(_:dropping:maskingPrompt:)`` on the documents it accepts (keys
    /// without escapes, numbers whose canonical form needs no `Double`, at most 32 levels deep:
    /// nearly every request), `nil` on the others.
    package static func canonicalizeInC(
        _ bytes: UnsafeBufferPointer<UInt8>,
        dropping: MemberNames = [],
        maskingPrompt: Bool = false
    ) -> Result? {
        guard let names = dropping.packed, let input = bytes.baseAddress else { return nil }
        let capacity = bytes.count + 1
        var outcome = sidecar_canonical_json_result()
        var status: Int32 = -1
        // The prompt's room only when it may be masked (the C side writes it only then).
        var prompt = [UInt8](repeating: 0, count: maskingPrompt ? capacity : 0)
        let context = [UInt8](unsafeUninitializedCapacity: capacity) { output, initialized in
            status = names.withUnsafeBufferPointer { names in
                prompt.withUnsafeMutableBufferPointer { promptOutput in
                    sidecar_canonical_json(
                        input,
                        bytes.count,
                        names.baseAddress,
                        names.count,
                        maskingPrompt ? 1 : 0,
                        output.baseAddress,
                        capacity,
                        maskingPrompt ? promptOutput.baseAddress : nil,
                        &outcome
                    )
                }
            }
            initialized = status == 1 ? outcome.output_length : 0
        }
        guard status == 1 else { return nil }
        prompt.removeLast(prompt.count - outcome.prompt_length)
        func number(_ start: Int, _ end: Int) -> Double? {
            end > 0 ? CanonicalJSON.number(UnsafeBufferPointer(rebasing: bytes[start..<end])) : nil
        }
        return Result(
            context: context,
            prompt: prompt,
            maskedPrompt: outcome.masked != 0,
            n: number(outcome.n_start, outcome.n_end),
            temperature: number(outcome.temperature_start, outcome.temperature_end)
        )
    }

    /// The reference implementation: every document, and the judge of those the C path leaves.
    package static func canonicalizeInSwift(
        _ bytes: UnsafeBufferPointer<UInt8>,
        dropping: MemberNames = [],
        maskingPrompt: Bool = false
    ) -> Result? {
        var writer = Writer(input: bytes)
        let start = writer.skipSpace(0)
        guard start < bytes.count, bytes[start] == UInt8(ascii: "{") else { return nil }
        guard let end = writer.topLevel(at: start, dropping: dropping, maskingPrompt: maskingPrompt),
            writer.skipSpace(end) == bytes.count
        else { return nil }
        return Result(
            context: writer.output,
            prompt: writer.prompt,
            maskedPrompt: writer.masked,
            n: writer.n,
            temperature: writer.temperature
        )
    }

    package static func canonicalize(
        _ bytes: [UInt8],
        dropping: MemberNames = [],
        maskingPrompt: Bool = false
    )
        -> Result?
    {
        bytes.withUnsafeBufferPointer { self.canonicalize($0, dropping: dropping, maskingPrompt: maskingPrompt) }
    }
}

extension CanonicalJSON {
    struct Member {
        /// The unescaped key: a range of ``Writer/keys``.
        var key: Range<Int>
        var value: Range<Int>
    }

    struct Writer {
        let input: UnsafeBufferPointer<UInt8>
        var output: [UInt8] = []
        var prompt: [UInt8] = []
        var masked = false
        /// Every object key read so far, unescaped, back to back (``Member/key`` ranges).
        var keys: [UInt8] = []
        var n: Double?
        var temperature: Double?

        init(input: UnsafeBufferPointer<UInt8>) {
            self.input = input
            self.output.reserveCapacity(input.count)
            self.keys.reserveCapacity(128)
        }

        func skipSpace(_ index: Int) -> Int {
            var index = index
            while index < self.input.count {
                switch self.input[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return index
                }
            }
            return index
        }

        // MARK: The top level and the prompt mask

        mutating func topLevel(at start: Int, dropping: MemberNames, maskingPrompt: Bool) -> Int? {
            guard let (members, end) = self.members(at: start) else { return nil }
            // One prompt is masked, as the response cache reads it: the last user message's
            // content, or the `prompt` of a request without `messages`.
            let hasMessages = members.contains {
                self.key($0.key, is: CanonicalJSON.messagesKey) && self.input[$0.value.lowerBound] == UInt8(ascii: "[")
            }
            self.output.append(UInt8(ascii: "{"))
            var first = true
            for member in members {
                if dropping.names.contains(where: { self.key(member.key, is: $0) }) { continue }
                if !first { self.output.append(UInt8(ascii: ",")) }
                first = false
                self.writeString(self.keys[member.key])
                self.output.append(UInt8(ascii: ":"))
                let opening = self.input[member.value.lowerBound]
                if maskingPrompt, opening == UInt8(ascii: "["), self.key(member.key, is: CanonicalJSON.messagesKey) {
                    guard self.messages(member.value) else { return nil }
                } else if maskingPrompt, !hasMessages, opening == UInt8(ascii: "\""),
                    self.key(member.key, is: CanonicalJSON.promptKey)
                {
                    guard self.mask(member.value) else { return nil }
                } else {
                    guard self.value(at: member.value.lowerBound, depth: 1) != nil else { return nil }
                    let isN = self.key(member.key, is: CanonicalJSON.nKey)
                    if isN || self.key(member.key, is: CanonicalJSON.temperatureKey) {
                        let number = CanonicalJSON.number(UnsafeBufferPointer(rebasing: self.input[member.value]))
                        if isN {
                            self.n = number
                        } else {
                            self.temperature = number
                        }
                    }
                }
            }
            self.output.append(UInt8(ascii: "}"))
            return end
        }

        /// The `messages` array, with the last `user` message's `content` masked.
        mutating func messages(_ range: Range<Int>) -> Bool {
            guard let elements = self.elements(at: range.lowerBound) else { return false }
            // Each message's members, read once: to find the last user message, then to write.
            var parsed: [[CanonicalJSON.Member]?] = []
            parsed.reserveCapacity(elements.count)
            var lastUser: Int?
            for (index, element) in elements.enumerated() {
                guard self.input[element.lowerBound] == UInt8(ascii: "{") else {
                    parsed.append(nil)
                    continue
                }
                guard let (members, _) = self.members(at: element.lowerBound) else { return false }
                parsed.append(members)
                if let role = members.last(where: { self.key($0.key, is: CanonicalJSON.roleKey) }),
                    self.decodedString(role.value) == CanonicalJSON.userRole
                {
                    lastUser = index
                }
            }
            self.output.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { self.output.append(UInt8(ascii: ",")) }
                if let members = parsed[index] {
                    guard self.object(members, depth: 3, maskingContent: index == lastUser) else { return false }
                } else {
                    guard self.value(at: element.lowerBound, depth: 2) != nil else { return false }
                }
            }
            self.output.append(UInt8(ascii: "]"))
            return true
        }

        /// Writes an object from its sorted members, the `content` member masked if asked.
        mutating func object(_ members: [CanonicalJSON.Member], depth: Int, maskingContent: Bool = false) -> Bool {
            self.output.append(UInt8(ascii: "{"))
            for (position, member) in members.enumerated() {
                if position > 0 { self.output.append(UInt8(ascii: ",")) }
                self.writeString(self.keys[member.key])
                self.output.append(UInt8(ascii: ":"))
                if maskingContent && self.key(member.key, is: CanonicalJSON.contentKey) {
                    guard self.mask(member.value) else { return false }
                } else {
                    guard self.value(at: member.value.lowerBound, depth: depth) != nil else { return false }
                }
            }
            self.output.append(UInt8(ascii: "}"))
            return true
        }

        /// Writes the marker in the document and the value's canonical form to `prompt`.
        mutating func mask(_ range: Range<Int>) -> Bool {
            let start = self.output.count
            guard self.value(at: range.lowerBound, depth: 3) != nil else { return false }
            self.prompt = Array(self.output[start...])
            self.output.removeLast(self.output.count - start)
            self.masked = true
            self.output.append(CanonicalJSON.promptMarker)
            return true
        }

        // MARK: Values

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
}
