/// Token counts from an upstream's `usage` object.
public struct OpenAIUsage: Decodable, Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int

    public init(promptTokens: Int, completionTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.promptTokens = try container.decodeIfPresent(Int.self, forKey: .promptTokens) ?? 0
        // Embeddings responses carry no completion_tokens.
        self.completionTokens = try container.decodeIfPresent(Int.self, forKey: .completionTokens) ?? 0
    }
}

/// The `usage` of a whole response body, or of one stream chunk with its `choices` count.
struct OpenAIUsageProbe: Decodable, Sendable {
    var usage: OpenAIUsage?
    /// Number of choices in a stream chunk; `nil` when the member is absent.
    var choiceCount: Int?

    enum CodingKeys: String, CodingKey {
        case usage, choices
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.usage = try? container.decodeIfPresent(OpenAIUsage.self, forKey: .usage)
        self.choiceCount = (try? container.decodeIfPresent([SkippedJSONValue].self, forKey: .choices))?.count
    }

    /// A chunk that only carries usage (what `stream_options.include_usage` adds at the end).
    var isUsageOnlyChunk: Bool { self.usage != nil && (self.choiceCount ?? 0) == 0 }
}
