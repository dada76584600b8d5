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
    }
}
