import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1

extension ProxyPipeline {
    /// The client's response headers: the upstream's relayable ones plus the sidecar's own.
    func clientHeaders(
        _ plan: ForwardPlan,
        upstreamHeaders: HTTPHeaders,
        model: String,
        upstream: String,
        usedFallback: Bool
    ) -> HTTPFields {
        var headers = self.responseHeaders(upstream: upstreamHeaders)
        switch plan.kind {
        case .generate(let score, let route, _, _, _):
            headers[SidecarHeaders.modelUsed] = model
            headers[SidecarHeaders.upstream] = upstream
            headers[SidecarHeaders.complexity] = SidecarHeaders.complexityValue(score)
            headers[SidecarHeaders.route] = route
            headers[SidecarHeaders.cache] = "miss"
            if usedFallback { headers[SidecarHeaders.fallback] = "true" }
        case .embed:
            headers[SidecarHeaders.modelUsed] = model
            headers[SidecarHeaders.upstream] = upstream
            headers[SidecarHeaders.cache] = "miss"
        case .passThrough:
            headers[SidecarHeaders.upstream] = upstream
        }
        headers[SidecarHeaders.requestID] = plan.request.requestID
        return headers
    }

    /// The cost of a whole (non-streamed) answer, read from its `usage`.
    func cost(ofWhole body: ByteBuffer, status: HTTPResponseStatus, model: String) -> CostQuote {
        guard (200..<300).contains(status.code), let probe = OpenAIUsageProbe(body), let usage = probe.usage else {
            return .zero
        }
        return self.price(usage, model: model)
    }

    func price(_ usage: OpenAIUsage, model: String) -> CostQuote {
        self.metrics.recordTokens(model: model, usage: usage)
        guard let quote = self.runtime.costs.quote(model: model, usage: usage) else {
            self.logger.debug("no price for model", metadata: ["model": "\(model)"])
            return .zero
        }
        return quote
    }

    /// Metrics and the access log for a request that was answered.
    func finish(
        _ request: ProxyRequest,
        model: String,
        upstream: String,
        status: Int,
        cost: CostQuote?,
        streamed: Bool
    ) {
        self.metrics.recordRequest(endpoint: request.endpoint, model: model, status: status, since: request.receivedAt)
        if let cost { self.metrics.recordCost(model: model, dollars: cost.dollars) }
        self.logger.debug(
            "request completed",
            metadata: [
                "request.id": "\(request.requestID)", "endpoint": "\(request.endpoint.label)",
                "model": "\(model)", "upstream.name": "\(upstream)", "status": "\(status)",
                "cost.usd": "\(cost?.header ?? "0")", "streamed": "\(streamed)",
            ]
        )
    }
}
