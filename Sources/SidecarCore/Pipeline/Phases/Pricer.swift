import Logging
import NIOCore
import NIOHTTP1
import SidecarOpenAI
import SidecarPolicy

/// Price phase: an answer's cost from the configured price table and the usage the upstream
/// reported, and the token counts for metrics. Without usage, the cost is estimated from the
/// prompt and the generated text (``TokenEstimate``) and marked as an estimate: a cost the
/// sidecar does not know never reads as zero.
final class Pricer: Sendable {
    let costs: CostCalculator
    let metrics: SidecarMetrics
    let logger: Logger

    init(costs: CostCalculator, metrics: SidecarMetrics, logger: Logger) {
        self.costs = costs
        self.metrics = metrics
        self.logger = logger
    }

    /// The cost of a whole (non-streamed) answer by the model that served it: its `usage`, else
    /// an estimate. Answers that are not 2xx cost nothing.
    func price(wholeAnswer body: ByteBuffer, status: HTTPResponseStatus, context: RequestContext) -> CostQuote {
        guard (200..<300).contains(status.code), let model = context.served?.model else { return .zero }
        if let usage = OpenAIUsageProbe(body)?.usage { return self.price(usage, model: model) }
        let generated = body.withUnsafeReadableBytes { GeneratedTextCounter.count($0.bindMemory(to: UInt8.self)) }
        let usage = OpenAIUsage(
            promptTokens: Self.estimatedPromptTokens(context),
            completionTokens: TokenEstimate.tokens(forBytes: generated)
        )
        return self.price(usage, model: model, estimated: true)
    }

    /// The cost of a relayed stream by the model that served it: from the usage it reported,
    /// else an estimate; `nil` when the relay kept no events (not an SSE stream).
    func price(stream relay: ResponseRelay, context: RequestContext) -> CostQuote? {
        guard let model = context.served?.model,
            let (usage, estimated) = relay.streamUsage(estimatingPrompt: Self.estimatedPromptTokens(context))
        else { return nil }
        return self.price(usage, model: model, estimated: estimated)
    }

    /// The cost of `usage` (reported, or `estimated`) for `model`; zero for a model without a price.
    func price(_ usage: OpenAIUsage, model: String, estimated: Bool = false) -> CostQuote {
        if !estimated { self.metrics.recordTokens(model: model, usage: usage) }
        var quote = self.costs.quote(model: model, usage: usage) ?? .zero
        if quote == .zero { self.logger.debug("no price for model", metadata: ["model": "\(model)"]) }
        quote.estimated = estimated
        quote.promptTokens = usage.promptTokens
        quote.completionTokens = usage.completionTokens
        return quote
    }

    /// The prompt's tokens, estimated from its text: the messages (or legacy prompt) of a
    /// completion, the body of anything else.
    static func estimatedPromptTokens(_ context: RequestContext) -> Int {
        guard let view = context.decoded?.completion else {
            return TokenEstimate.tokens(forBytes: context.request.body.readableBytes)
        }
        if let messages = view.messages {
            let bytes = messages.reduce(0) { $0 + ($1.content?.text.utf8.count ?? 0) }
            return TokenEstimate.promptTokens(textBytes: bytes, messageCount: messages.count)
        }
        return TokenEstimate.promptTokens(textBytes: view.prompt?.text.utf8.count ?? 0, messageCount: 0)
    }
}
