import Logging
import NIOCore
import NIOHTTP1
import SidecarOpenAI
import SidecarPolicy

/// Price phase: an answer's cost from the configured price table and the usage the upstream
/// reported, and the token counts for metrics.
struct Pricer: Sendable {
    let costs: CostCalculator
    let metrics: SidecarMetrics
    let logger: Logger

    /// The cost of a whole (non-streamed) answer, read from its `usage`.
    func price(wholeAnswer body: ByteBuffer, status: HTTPResponseStatus, model: String) -> CostQuote {
        guard (200..<300).contains(status.code), let probe = OpenAIUsageProbe(body), let usage = probe.usage else {
            return .zero
        }
        return self.price(usage, model: model)
    }

    func price(_ usage: OpenAIUsage, model: String) -> CostQuote {
        self.metrics.recordTokens(model: model, usage: usage)
        guard let quote = self.costs.quote(model: model, usage: usage) else {
            self.logger.debug("no price for model", metadata: ["model": "\(model)"])
            return .zero
        }
        return quote
    }
}
