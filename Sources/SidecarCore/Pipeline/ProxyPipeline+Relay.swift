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
            if Self.isDropped(responseHeader: name) { continue }
            if name.caseInsensitiveEquals("x-request-id") {
                headers.add(name: "X-Upstream-Request-Id", value: value)
            } else {
                headers.add(name: name, value: value)
            }
        }
        switch plan.kind {
        case .generate(let score, let route, _, _, _, _):
            headers.add(name: "X-Model-Used", value: model)
            headers.add(name: "X-Sidecar-Upstream", value: upstream)
            headers.add(name: "X-Sidecar-Complexity", value: SidecarHeaders.complexityValue(score))
            headers.add(name: "X-Sidecar-Route", value: route)
            headers.add(name: "X-Sidecar-Cache", value: "miss")
            if usedFallback { headers.add(name: "X-Sidecar-Fallback", value: "true") }
        case .embed:
            headers.add(name: "X-Model-Used", value: model)
            headers.add(name: "X-Sidecar-Upstream", value: upstream)
            headers.add(name: "X-Sidecar-Cache", value: "miss")
        case .passThrough:
            headers.add(name: "X-Sidecar-Upstream", value: upstream)
        }
        headers.add(name: "X-Request-Id", value: plan.request.requestID)
        return headers
    }

    /// Hop-by-hop and framing headers, `Date` and `Server`: not relayed to the client.
    static func isDropped(responseHeader name: String) -> Bool {
        switch name.utf8.count {
        case 2: return name.caseInsensitiveEquals("te")
        case 4: return name.caseInsensitiveEquals("date") || name.caseInsensitiveEquals("host")
        case 6: return name.caseInsensitiveEquals("server")
        case 7: return name.caseInsensitiveEquals("trailer") || name.caseInsensitiveEquals("upgrade")
        case 10: return name.caseInsensitiveEquals("connection") || name.caseInsensitiveEquals("keep-alive")
        case 14: return name.caseInsensitiveEquals("content-length")
        case 16: return name.caseInsensitiveEquals("proxy-connection")
        case 17: return name.caseInsensitiveEquals("transfer-encoding")
        case 19: return name.caseInsensitiveEquals("proxy-authorization")
        default: return false
        }
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

extension String {
    /// ASCII case-insensitive equality with a lower-case literal.
    func caseInsensitiveEquals(_ lowercase: String) -> Bool {
        guard self.utf8.count == lowercase.utf8.count else { return false }
        for (byte, expected) in zip(self.utf8, lowercase.utf8)
        where byte != expected && !(byte &- UInt8(ascii: "A") < 26 && byte | 0x20 == expected) {
            return false
        }
        return true
    }
}
