import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOFoundationCompat

/// What the relay needs to know about the request it answers.
struct RelayContext: Sendable {
    var request: ProxyRequest
    var model: String
    var upstream: String
}

extension ProxyPipeline {
    /// A whole (non-streamed) answer: read it, price it from `usage`, send it with the cost header.
    func relayWhole(
        _ response: UpstreamResponse,
        headers: HTTPFields,
        context: RelayContext
    ) async throws
        -> ProxyOutcome
    {
        let limit = self.runtime.configuration.server.maxResponseBytes
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: limit, upstream: context.upstream)
        } catch let error as UpstreamError {
            self.metrics.recordUpstreamFailure(upstream: context.upstream, reason: error.shortDescription)
            throw SidecarError.upstream(error)
        }
        var headers = headers
        var cost: Decimal = 0
        if response.status.kind == .successful,
            let probe = OpenAIUsageProbe(body),
            let usage = probe.usage
        {
            cost = self.price(usage, context: context)
        }
        headers[SidecarHeaders.queryCost] = CostCalculator.headerValue(cost)
        self.finish(context, status: response.status.code, cost: cost, streamed: false)
        return ProxyOutcome(status: response.status, headers: headers, body: ResponseBody(byteBuffer: body))
    }

    /// A streamed answer: events relayed as they complete, usage read on the way, the cost sent
    /// as an HTTP trailer. An upstream failing mid-stream ends the stream with an error event.
    func relayStream(
        _ response: UpstreamResponse,
        headers: HTTPFields,
        dropUsageChunk: Bool,
        context: RelayContext
    )
        -> ProxyOutcome
    {
        var headers = headers
        headers[SidecarHeaders.trailer] = SidecarHeaders.queryCost.rawName
        headers[.cacheControl] = headers[.cacheControl] ?? "no-cache"
        let upstreamBody = response.body
        let status = response.status
        let pipeline = self
        return ProxyOutcome(
            status: status,
            headers: headers,
            body: ResponseBody { writer in
                var relay = StreamRelay(dropUsageChunk: dropUsageChunk)
                var failure: UpstreamError?
                let deadline = context.request.receivedAt + pipeline.runtime.configuration.timeouts.request
                do {
                    for try await chunk in upstreamBody {
                        let out = relay.feed(chunk)
                        if out.readableBytes > 0 {
                            try await writer.write(out)
                        }
                        if ContinuousClock.now >= deadline {
                            throw UpstreamError(
                                .deadlineExceeded,
                                upstream: context.upstream,
                                detail: "request deadline exceeded"
                            )
                        }
                    }
                } catch let error as UpstreamError where error.code != .cancelled {
                    failure = error
                }
                if let rest = relay.finish() {
                    try await writer.write(rest)
                }
                if let failure {
                    pipeline.pools.breakers[context.upstream]?.recordFailure(wasProbe: false)
                    pipeline.metrics.recordUpstreamFailure(upstream: context.upstream, reason: failure.shortDescription)
                    pipeline.logger.warning(
                        "upstream failed mid-stream",
                        metadata: ["request.id": "\(context.request.requestID)", "error": "\(failure)"]
                    )
                    if !relay.sawDone {
                        try await writer.write(
                            StreamRelay.errorEvent(
                                message: "Upstream \"\(failure.upstream)\" failed mid-stream: \(failure.detail)",
                                code: "upstream_\(failure.shortDescription)"
                            )
                        )
                    }
                }
                let cost = relay.usage.map { pipeline.price($0, context: context) } ?? 0
                try await writer.finish([SidecarHeaders.queryCost: CostCalculator.headerValue(cost)])
                pipeline.finish(context, status: status.code, cost: cost, streamed: true)
            }
        )
    }

    func price(_ usage: OpenAIUsage, context: RelayContext) -> Decimal {
        self.metrics.recordTokens(model: context.model, usage: usage)
        guard let cost = self.runtime.costs.cost(model: context.model, usage: usage) else {
            self.logger.debug("no price for model", metadata: ["model": "\(context.model)"])
            return 0
        }
        return cost
    }

    func finish(_ context: RelayContext, status: Int, cost: Decimal, streamed: Bool) {
        self.metrics.recordRequest(
            endpoint: context.request.endpoint,
            model: context.model,
            status: status,
            since: context.request.receivedAt
        )
        self.metrics.recordCost(model: context.model, dollars: cost)
        self.logger.debug(
            "request completed",
            metadata: [
                "request.id": "\(context.request.requestID)", "endpoint": "\(context.request.endpoint.label)",
                "model": "\(context.model)", "upstream.name": "\(context.upstream)", "status": "\(status)",
                "cost.usd": "\(CostCalculator.headerValue(cost))", "streamed": "\(streamed)",
            ]
        )
    }
}
