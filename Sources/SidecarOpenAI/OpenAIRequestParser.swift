import NIOCore

/// A single validating pass over a request body that reads the fields of
/// ``OpenAIRequestView`` without building a document tree.
///
/// It is the fast path of the decode stage: it returns a view only when the whole body is valid
/// JSON and every field it reads has the type `JSONDecoder` would accept, so the result is the
/// one `JSONDecoder` would give. Anything else (malformed JSON, a wrong type, duplicate keys,
/// numbers it does not read exactly) returns `nil`, and the caller decodes with `JSONDecoder`,
/// which either agrees or throws the error the client sees.
package struct OpenAIRequestParser {
    // Read by the scanning half in OpenAIRequestParser+Scanning.swift.
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    var depth = 0

    static let maxDepth = 512

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    package static func parse(_ buffer: ByteBuffer) -> OpenAIRequestView? {
        self.parseWithLayout(buffer)?.view
    }

    /// The view and where the members the rewriter changes are, so it need not scan again.
    package static func parseWithLayout(_ buffer: ByteBuffer) -> (view: OpenAIRequestView, layout: RequestBodyLayout)? {
        buffer.withUnsafeReadableBytes { raw in
            var parser = OpenAIRequestParser(bytes: raw.assumingMemoryBound(to: UInt8.self))
            return parser.document()
        }
    }

    /// The value of the JSON string literal `quoted` (quotes included), unescaped; `nil` if it
    /// is not one.
    package static func unescaped(_ quoted: UnsafeBufferPointer<UInt8>) -> String? {
        var parser = OpenAIRequestParser(bytes: quoted)
        guard let value = parser.string(), parser.index == quoted.count else { return nil }
        return value
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
}
