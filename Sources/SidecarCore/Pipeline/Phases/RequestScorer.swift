import NIOCore
import SidecarOpenAI
import SidecarPolicy

/// Score phase: how hard a completion's prompt is, with the features behind the score and the
/// scorer that decided (the learned router over the prompt's embedding, else the heuristic).
final class RequestScorer: Sendable {
    let scorer: RoutingScorer
    /// Embeds the prompt for the learned router when the cache made no embedding.
    let embedder: PromptEmbedder?
    let budgetMilliseconds: Int

    init(scorer: RoutingScorer, embedder: PromptEmbedder?, budgetMilliseconds: Int) {
        self.scorer = scorer
        self.embedder = embedder
        self.budgetMilliseconds = budgetMilliseconds
    }

    /// The score of a completion; `nil` for calls that are not routed.
    func score(_ decoded: DecodedRequest, embedding: [Float]?) -> ComplexityScore? {
        guard let view = decoded.completion else { return nil }
        return self.scorer.score(Self.scoringInput(view), embedding: embedding)
    }

    /// The prompt's embedding for the learned router, when one is loaded and no phase made it:
    /// a future of the vector (`nil` when the embedder was busy or late: the heuristic decides).
    func embedding(_ decoded: DecodedRequest, on eventLoop: any EventLoop) -> EventLoopFuture<[Float]?>? {
        guard self.scorer.wantsEmbedding, let embedder = self.embedder, let view = decoded.completion else {
            return nil
        }
        let text = Self.scoringInput(view).lastUserText
        guard !text.isEmpty else { return nil }
        let promise = eventLoop.makePromise(of: [Float]?.self)
        embedder.embed(text, budgetMilliseconds: self.budgetMilliseconds, keepCut: true) { result in
            promise.succeed(try? result.get().vector)
        }
        // Never wait past the budget: the heuristic decides instead.
        let timer = eventLoop.scheduleTask(in: .milliseconds(Int64(max(1, self.budgetMilliseconds)))) {
            promise.succeed(nil)
        }
        return promise.futureResult.always { _ in timer.cancel() }
    }

    /// ``embedding(_:on:)`` for a request whose context has no embedding and whose prompt was
    /// not yet given to the embedder (by the cache lookup); marks it given.
    func embeddingWanted(_ context: RequestContext, on eventLoop: any EventLoop) -> EventLoopFuture<[Float]?>? {
        guard context.embedding == nil, !context.embeddingTried, let decoded = context.decoded,
            let pending = self.embedding(decoded, on: eventLoop)
        else { return nil }
        context.embeddingTried = true
        return pending
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
