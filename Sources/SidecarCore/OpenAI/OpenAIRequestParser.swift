import NIOCore

/// A single validating pass over a request body that reads the fields of
/// ``OpenAIRequestView`` without building a document tree.
///
/// It is the fast path of the decode stage: it returns a view only when the whole body is valid
/// JSON and every field it reads has the type `JSONDecoder` would accept, so the result is the
/// one `JSONDecoder` would give. Anything else (malformed JSON, a wrong type, duplicate keys,
/// numbers it does not read exactly) returns `nil`, and the caller decodes with `JSONDecoder`,
/// which either agrees or throws the error the client sees.
struct OpenAIRequestParser {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var depth = 0

    private static let maxDepth = 512

    private init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    static func parse(_ buffer: ByteBuffer) -> OpenAIRequestView? {
        self.parseWithLayout(buffer)?.view
    }

    /// The view and where the members the rewriter changes are, so it need not scan again.
    static func parseWithLayout(_ buffer: ByteBuffer) -> (view: OpenAIRequestView, layout: RequestBodyLayout)? {
        buffer.withUnsafeReadableBytes { raw in
            var parser = OpenAIRequestParser(bytes: raw.assumingMemoryBound(to: UInt8.self))
            return parser.document()
        }
    }

    // MARK: The request object

    private mutating func document() -> (view: OpenAIRequestView, layout: RequestBodyLayout)? {
        self.skipSpace()
        guard self.peek == UInt8(ascii: "{") else { return nil }
        var view = OpenAIRequestView()
        var layout = RequestBodyLayout(brace: self.index)
        var seen: UInt16 = 0
        var maxTokens: Int?
        var maxCompletionTokens: Int?
        let complete = self.object { parser, key in
            layout.memberCount += 1
            let bit: UInt16
            switch key {
            case "model": bit = 1 << 0
            case "stream": bit = 1 << 1
            case "stream_options": bit = 1 << 2
            case "messages": bit = 1 << 3
            case "prompt": bit = 1 << 4
            case "tools": bit = 1 << 5
            case "functions": bit = 1 << 6
            case "max_tokens": bit = 1 << 7
            case "max_completion_tokens": bit = 1 << 8
            default: return parser.skipValue()
            }
            guard seen & bit == 0 else { return false }
            seen |= bit
            let start = parser.index
            defer {
                if bit == 1 << 0 { layout.model = start..<parser.index }
                if bit == 1 << 2 { layout.streamOptions = start..<parser.index }
            }
            if parser.takeNull() { return true }
            switch key {
            case "model":
                guard let model = parser.string() else { return false }
                view.model = model
            case "stream":
                guard let stream = parser.bool() else { return false }
                view.stream = stream
            case "stream_options":
                guard let options = parser.streamOptions() else { return false }
                view.streamOptions = options
            case "messages":
                guard let messages = parser.messages() else { return false }
                view.messages = messages
            case "prompt":
                guard let prompt = parser.prompt() else { return false }
                view.prompt = prompt
            case "tools", "functions":
                guard let count = parser.elementCount() else { return false }
                view.toolCount += count
            case "max_tokens":
                guard let value = parser.integer() else { return false }
                maxTokens = value
            default:
                guard let value = parser.integer() else { return false }
                maxCompletionTokens = value
            }
            return true
        }
        guard complete else { return nil }
        self.skipSpace()
        guard self.index == self.bytes.count else { return nil }
        view.maxTokens = maxCompletionTokens ?? maxTokens
        return (view, layout)
    }

    private mutating func streamOptions() -> OpenAIRequestView.StreamOptions? {
        guard self.peek == UInt8(ascii: "{") else { return nil }
        var options = OpenAIRequestView.StreamOptions()
        var seen = false
        let complete = self.object { parser, key in
            guard key == "include_usage" else { return parser.skipValue() }
            guard !seen else { return false }
            seen = true
            if parser.takeNull() { return true }
            guard let value = parser.bool() else { return false }
            options.includeUsage = value
            return true
        }
        return complete ? options : nil
    }

    private mutating func messages() -> [OpenAIRequestView.Message]? {
        guard self.peek == UInt8(ascii: "[") else { return nil }
        var messages: [OpenAIRequestView.Message] = []
        let complete = self.array { parser in
            guard let message = parser.message() else { return false }
            messages.append(message)
            return true
        }
        return complete ? messages : nil
    }

    private mutating func message() -> OpenAIRequestView.Message? {
        guard self.peek == UInt8(ascii: "{") else { return nil }
        var role: String?
        var content: MessageContent?
        var seenContent = false
        let complete = self.object { parser, key in
            switch key {
            case "role":
                guard role == nil, let value = parser.string() else { return false }
                role = value
            case "content":
                guard !seenContent else { return false }
                seenContent = true
                if parser.takeNull() { return true }
                guard let value = parser.messageContent() else { return false }
                content = value
            default:
                return parser.skipValue()
            }
            return true
        }
        guard complete, let role else { return nil }
        return OpenAIRequestView.Message(role: role, content: content)
    }

    private mutating func messageContent() -> MessageContent? {
        if self.peek == UInt8(ascii: "\"") {
            return self.string().map(MessageContent.text)
        }
        guard self.peek == UInt8(ascii: "[") else { return nil }
        var parts: [MessageContent.Part] = []
        let complete = self.array { parser in
            guard parser.peek == UInt8(ascii: "{") else { return false }
            var part = MessageContent.Part()
            var seenType = false
            var seenText = false
            let complete = parser.object { parser, key in
                switch key {
                case "type":
                    guard !seenType else { return false }
                    seenType = true
                    if parser.takeNull() { return true }
                    guard let value = parser.string() else { return false }
                    part.type = value
                case "text":
                    guard !seenText else { return false }
                    seenText = true
                    if parser.takeNull() { return true }
                    guard let value = parser.string() else { return false }
                    part.text = value
                default:
                    return parser.skipValue()
                }
                return true
            }
            guard complete else { return false }
            parts.append(part)
            return true
        }
        return complete ? .parts(parts) : nil
    }

    /// A string, an array of strings, or anything else (token arrays): never a type error.
    private mutating func prompt() -> PromptInput? {
        if self.peek == UInt8(ascii: "\"") {
            return self.string().map(PromptInput.text)
        }
        if self.peek == UInt8(ascii: "[") {
            var texts: [String] = []
            var allStrings = true
            let complete = self.array { parser in
                if allStrings && parser.peek == UInt8(ascii: "\"") {
                    guard let text = parser.string() else { return false }
                    texts.append(text)
                    return true
                }
                allStrings = false
                return parser.skipValue()
            }
            guard complete else { return nil }
            return allStrings ? .texts(texts) : .tokens
        }
        return self.skipValue() ? .tokens : nil
    }

    private mutating func elementCount() -> Int? {
        guard self.peek == UInt8(ascii: "[") else { return nil }
        var count = 0
        let complete = self.array { parser in
            count += 1
            return parser.skipValue()
        }
        return complete ? count : nil
    }

    // MARK: Structure

    private var peek: UInt8? {
        self.index < self.bytes.count ? self.bytes[self.index] : nil
    }

    private mutating func skipSpace() {
        while self.index < self.bytes.count {
            switch self.bytes[self.index] {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): self.index += 1
            default: return
            }
        }
    }

    /// Reads `{ "key": value, ... }`; `member` reads each value (positioned at it) and returns
    /// false to stop. The index must be at `{`.
    private mutating func object(_ member: (inout OpenAIRequestParser, String) -> Bool) -> Bool {
        self.depth += 1
        defer { self.depth -= 1 }
        guard self.depth <= Self.maxDepth else { return false }
        self.index += 1
        self.skipSpace()
        if self.peek == UInt8(ascii: "}") {
            self.index += 1
            return true
        }
        while true {
            self.skipSpace()
            guard self.peek == UInt8(ascii: "\""), let key = self.string() else { return false }
            self.skipSpace()
            guard self.peek == UInt8(ascii: ":") else { return false }
            self.index += 1
            self.skipSpace()
            guard member(&self, key) else { return false }
            self.skipSpace()
            switch self.peek {
            case UInt8(ascii: ","): self.index += 1
            case UInt8(ascii: "}"):
                self.index += 1
                return true
            default: return false
            }
        }
    }

    /// Reads `[ value, ... ]`; `element` reads each value (positioned at it). The index must be at `[`.
    private mutating func array(_ element: (inout OpenAIRequestParser) -> Bool) -> Bool {
        self.depth += 1
        defer { self.depth -= 1 }
        guard self.depth <= Self.maxDepth else { return false }
        self.index += 1
        self.skipSpace()
        if self.peek == UInt8(ascii: "]") {
            self.index += 1
            return true
        }
        while true {
            self.skipSpace()
            guard element(&self) else { return false }
            self.skipSpace()
            switch self.peek {
            case UInt8(ascii: ","): self.index += 1
            case UInt8(ascii: "]"):
                self.index += 1
                return true
            default: return false
            }
        }
    }

    /// Validates any value and moves past it.
    private mutating func skipValue() -> Bool {
        guard let byte = self.peek else { return false }
        switch byte {
        case UInt8(ascii: "\""): return self.scanString(collect: false) != nil
        case UInt8(ascii: "{"): return self.object { parser, _ in parser.skipValue() }
        case UInt8(ascii: "["): return self.array { parser in parser.skipValue() }
        case UInt8(ascii: "t"): return self.literal("true")
        case UInt8(ascii: "f"): return self.literal("false")
        case UInt8(ascii: "n"): return self.literal("null")
        default: return self.number() != nil
        }
    }

    // MARK: Scalars

    private mutating func takeNull() -> Bool {
        guard self.peek == UInt8(ascii: "n") else { return false }
        return self.literal("null")
    }

    private mutating func literal(_ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard self.index + count <= self.bytes.count else { return false }
        let pointer = text.utf8Start
        for offset in 0..<count where self.bytes[self.index + offset] != pointer[offset] {
            return false
        }
        self.index += count
        return true
    }

    private mutating func bool() -> Bool? {
        if self.peek == UInt8(ascii: "t") { return self.literal("true") ? true : nil }
        if self.peek == UInt8(ascii: "f") { return self.literal("false") ? false : nil }
        return nil
    }

    /// A JSON integer that fits `Int` (no fraction or exponent; others go to `JSONDecoder`).
    private mutating func integer() -> Int? {
        let start = self.index
        guard self.number() != nil else { return nil }
        let digits = UnsafeBufferPointer(rebasing: self.bytes[start..<self.index])
        guard digits.allSatisfy({ $0 == UInt8(ascii: "-") || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) })
        else { return nil }
        return Int(String(decoding: digits, as: UTF8.self))
    }

    /// Validates a JSON number; returns its end.
    private mutating func number() -> Int? {
        var index = self.index
        func digit(_ at: Int) -> Bool {
            at < self.bytes.count && self.bytes[at] >= UInt8(ascii: "0") && self.bytes[at] <= UInt8(ascii: "9")
        }
        if index < self.bytes.count && self.bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard digit(index) else { return nil }
        if self.bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while digit(index) { index += 1 }
        }
        if index < self.bytes.count && self.bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digit(index) else { return nil }
            while digit(index) { index += 1 }
        }
        if index < self.bytes.count
            && (self.bytes[index] == UInt8(ascii: "e") || self.bytes[index] == UInt8(ascii: "E"))
        {
            index += 1
            if index < self.bytes.count
                && (self.bytes[index] == UInt8(ascii: "+") || self.bytes[index] == UInt8(ascii: "-"))
            {
                index += 1
            }
            guard digit(index) else { return nil }
            while digit(index) { index += 1 }
        }
        self.index = index
        return index
    }

    private mutating func string() -> String? {
        guard self.peek == UInt8(ascii: "\"") else { return nil }
        return self.scanString(collect: true)
    }

    /// Validates the string at the index (escapes, control characters, UTF-8) and moves past it;
    /// returns its unescaped value when `collect`, else "".
    private mutating func scanString(collect: Bool) -> String? {
        var index = self.index + 1
        let start = index
        var hasEscapes = false
        // Fast scan: plain ASCII up to the closing quote.
        while index < self.bytes.count {
            let byte = self.bytes[index]
            if byte == UInt8(ascii: "\"") {
                self.index = index + 1
                guard collect else { return "" }
                return String(decoding: UnsafeBufferPointer(rebasing: self.bytes[start..<index]), as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x80 {
                hasEscapes = true
                break
            }
            index += 1
        }
        guard hasEscapes else { return nil }
        // Slow path: escapes and non-ASCII.
        var out: [UInt8] = []
        if collect {
            out.reserveCapacity(index - start + 16)
            out.append(contentsOf: UnsafeBufferPointer(rebasing: self.bytes[start..<index]))
        }
        while index < self.bytes.count {
            let byte = self.bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                self.index = index + 1
                return collect ? String(decoding: out, as: UTF8.self) : ""
            case UInt8(ascii: "\\"):
                guard index + 1 < self.bytes.count else { return nil }
                let escaped = self.bytes[index + 1]
                index += 2
                let simple: UInt8?
                switch escaped {
                case UInt8(ascii: "\""): simple = UInt8(ascii: "\"")
                case UInt8(ascii: "\\"): simple = UInt8(ascii: "\\")
                case UInt8(ascii: "/"): simple = UInt8(ascii: "/")
                case UInt8(ascii: "b"): simple = 0x08
                case UInt8(ascii: "f"): simple = 0x0C
                case UInt8(ascii: "n"): simple = 0x0A
                case UInt8(ascii: "r"): simple = 0x0D
                case UInt8(ascii: "t"): simple = 0x09
                case UInt8(ascii: "u"): simple = nil
                default: return nil
                }
                if let simple {
                    if collect { out.append(simple) }
                    continue
                }
                guard var scalar = self.hex4(at: index) else { return nil }
                index += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    // A high surrogate must be followed by an escaped low surrogate.
                    guard index + 1 < self.bytes.count, self.bytes[index] == UInt8(ascii: "\\"),
                        self.bytes[index + 1] == UInt8(ascii: "u"), let low = self.hex4(at: index + 2),
                        (0xDC00...0xDFFF).contains(low)
                    else { return nil }
                    index += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    return nil
                }
                if collect, let unicode = Unicode.Scalar(scalar) {
                    out.append(contentsOf: String(Character(unicode)).utf8)
                }
            case 0..<0x20:
                return nil
            case 0x80...:
                guard let length = self.utf8SequenceLength(at: index) else { return nil }
                if collect {
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: self.bytes[index..<(index + length)]))
                }
                index += length
            default:
                if collect { out.append(byte) }
                index += 1
            }
        }
        return nil
    }

    private func hex4(at start: Int) -> UInt32? {
        guard start + 4 <= self.bytes.count else { return nil }
        var value: UInt32 = 0
        for offset in 0..<4 {
            let byte = self.bytes[start + offset]
            let nibble: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(nibble)
        }
        return value
    }

    /// The length of the well-formed UTF-8 sequence starting at `start`, or nil.
    private func utf8SequenceLength(at start: Int) -> Int? {
        let lead = self.bytes[start]
        let length: Int
        let minimum: UInt32
        switch lead {
        case 0xC2...0xDF:
            length = 2
            minimum = 0x80
        case 0xE0...0xEF:
            length = 3
            minimum = 0x800
        case 0xF0...0xF4:
            length = 4
            minimum = 0x10000
        default: return nil
        }
        guard start + length <= self.bytes.count else { return nil }
        var scalar = UInt32(lead) & (0xFF >> UInt32(length + 1))
        for offset in 1..<length {
            let byte = self.bytes[start + offset]
            guard byte & 0xC0 == 0x80 else { return nil }
            scalar = scalar << 6 | UInt32(byte & 0x3F)
        }
        guard scalar >= minimum, scalar <= 0x10FFFF, !(0xD800...0xDFFF).contains(scalar) else { return nil }
        return length
    }
}

/// Where a request body's top-level members are, as byte offsets from its reader index.
struct RequestBodyLayout: Sendable, Equatable {
    /// The opening brace of the object.
    var brace: Int
    var memberCount = 0
    /// The value of `model` / `stream_options`, when present (even `null`).
    var model: Range<Int>?
    var streamOptions: Range<Int>?
}
