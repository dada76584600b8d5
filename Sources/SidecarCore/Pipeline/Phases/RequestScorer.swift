import SidecarOpenAI
import SidecarPolicy

/// Score phase: how hard a completion's prompt is, with the features behind the score.
struct RequestScorer: Sendable {
    let scorer: any ComplexityScorer

    /// The score of a completion; `nil` for calls that are not routed.
    func score(_ decoded: DecodedRequest) -> ComplexityScore? {
        guard let view = decoded.completion else { return nil }
        return self.scorer.score(Self.scoringInput(view))
    }

    static func scoringInput(_ view: OpenAIRequestView) -> ScoringInput {
        var messages: [ScoringInput.Message] = []
        if let chat = view.messages {
            messages.reserveCapacity(chat.count)
            for message in chat {
                messages.append(
                    .init(
                        role: message.role,
                        text: message.content?.text ?? "",
                        nonTextParts: message.content?.nonTextPartCount ?? 0
                    )
                )
            }
        } else if let prompt = view.prompt {
            messages.append(.init(role: "user", text: prompt.text))
        }
        return ScoringInput(messages: messages, toolCount: view.toolCount, maxTokens: view.maxTokens)
    }
}
