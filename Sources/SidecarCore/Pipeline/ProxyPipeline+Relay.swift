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
    ) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.reserveCapacity(upstreamHeaders.count + 9)
        for (name, value) in upstreamHeaders {
            if SidecarHeaders.isDropped(responseHeader: name) { continue }
            if name.caseInsensitiveEquals("x-request-id") {
                headers.add(name: SidecarHeaders.upstreamRequestID.rawName, value: value)
            } else {
                headers.add(name: name, value: value)
            }
        }
        switch plan.kind {
        case .generate(let completion):
            headers.add(name: SidecarHeaders.modelUsed.rawName, value: model)
            headers.add(name: SidecarHeaders.upstream.rawName, value: upstream)
            headers.add(
                name: SidecarHeaders.complexity.rawName,
                value: SidecarHeaders.complexityValue(completion.score)
            )
            headers.add(name: SidecarHeaders.route.rawName, value: completion.route)
            headers.add(name: SidecarHeaders.cache.rawName, value: "miss")
            if usedFallback { headers.add(name: SidecarHeaders.fallback.rawName, value: "true") }
        case .embed:
            headers.add(name: SidecarHeaders.modelUsed.rawName, value: model)
            headers.add(name: SidecarHeaders.upstream.rawName, value: upstream)
            headers.add(name: SidecarHeaders.cache.rawName, value: "miss")
        case .passThrough:
            headers.add(name: SidecarHeaders.upstream.rawName, value: upstream)
        }
        headers.add(name: SidecarHeaders.requestID.rawName, value: plan.request.requestID)
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
