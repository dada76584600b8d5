/// The parts of an OpenAI chat or completions request the sidecar reads.
///
/// Decoding validates the whole document (malformed JSON fails here, giving 400); fields not
/// listed are ignored by the view and kept verbatim in the forwarded body.
package struct OpenAIRequestView: Decodable, Sendable, Equatable {
    package struct StreamOptions: Decodable, Sendable, Equatable {
        package var includeUsage: Bool?

        package enum CodingKeys: String, CodingKey {
            case includeUsage = "include_usage"
        }
    }

    package struct Message: Decodable, Sendable, Equatable {
        package var role: String
        package var content: MessageContent?
    }

    package var model: String?
    package var stream: Bool?
    package var streamOptions: StreamOptions?
    package var messages: [Message]?
    package var prompt: PromptInput?
    package var toolCount: Int
    package var maxTokens: Int?

    package enum CodingKeys: String, CodingKey {
        case model, stream, messages, prompt, tools, functions
        case streamOptions = "stream_options"
        case maxTokens = "max_tokens"
        case maxCompletionTokens = "max_completion_tokens"
    }

    /// An empty request (every field absent); ``OpenAIRequestParser`` fills it in.
    package init() {
        self.toolCount = 0
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.model = try container.decodeIfPresent(String.self, forKey: .model)
        self.stream = try container.decodeIfPresent(Bool.self, forKey: .stream)
        self.streamOptions = try container.decodeIfPresent(StreamOptions.self, forKey: .streamOptions)
        self.messages = try container.decodeIfPresent([Message].self, forKey: .messages)
        self.prompt = try container.decodeIfPresent(PromptInput.self, forKey: .prompt)
        // Only how many tools there are matters; their schemas are not decoded.
        let tools = try container.decodeIfPresent(ElementCount.self, forKey: .tools)
        let functions = try container.decodeIfPresent(ElementCount.self, forKey: .functions)
        self.toolCount = (tools?.count ?? 0) + (functions?.count ?? 0)
        self.maxTokens =
            try container.decodeIfPresent(Int.self, forKey: .maxCompletionTokens)
            ?? container.decodeIfPresent(Int.self, forKey: .maxTokens)
    }

    package var isStreaming: Bool { self.stream ?? false }
}

/// A message's `content`: a string, or an array of typed parts of which text parts are read.
package enum MessageContent: Decodable, Sendable, Equatable {
    case text(String)
    case parts([Part])

    package struct Part: Decodable, Sendable, Equatable {
        package var type: String?
        package var text: String?
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self = .text(text)
        } else {
            self = .parts(try container.decode([Part].self))
        }
    }

    /// The text the scorer reads; non-text parts (images, audio) count only as their presence.
    package var text: String {
        switch self {
        case .text(let text): return text
        case .parts(let parts): return parts.compactMap(\.text).joined(separator: "\n")
        }
    }

    package var nonTextPartCount: Int {
        switch self {
        case .text: return 0
        case .parts(let parts): return parts.filter { $0.text == nil }.count
        }
    }
}

/// A legacy completions `prompt`: a string, an array of strings, or token arrays (not scored).
package enum PromptInput: Decodable, Sendable, Equatable {
    case text(String)
    case texts([String])
    case tokens

    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self = .text(text)
        } else if let texts = try? container.decode([String].self) {
            self = .texts(texts)
        } else {
            self = .tokens
        }
    }

    package var text: String {
        switch self {
        case .text(let text): return text
        case .texts(let texts): return texts.joined(separator: "\n")
        case .tokens: return ""
        }
    }
}

/// The number of elements of a JSON array, counted without decoding them.
package struct ElementCount: Decodable, Sendable {
    package var count: Int

    package init(from decoder: any Decoder) throws {
        var container = try decoder.unkeyedContainer()
        var count = 0
        while !container.isAtEnd {
            _ = try container.superDecoder()
            count += 1
        }
        self.count = count
    }
}
