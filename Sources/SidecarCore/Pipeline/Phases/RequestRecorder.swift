import Logging

/// Record phase: the request's metrics and its one access-log line.
struct RequestRecorder: Sendable {
    let metrics: SidecarMetrics
    let logger: Logger

    func record(_ context: RequestContext, status: Int, streamed: Bool) {
        let request = context.request
        let model = context.served?.model ?? ""
        self.metrics.recordRequest(endpoint: request.endpoint, model: model, status: status, since: request.receivedAt)
        if let cost = context.cost {
            self.metrics.recordCost(model: model, dollars: cost.dollars, estimated: cost.estimated)
        }
        self.logger.debug(
            "request completed",
            metadata: [
                "request.id": "\(request.requestID)", "endpoint": "\(request.endpoint.label)",
                "model": "\(model)", "upstream.name": "\(context.served?.upstream ?? "")", "status": "\(status)",
                "cost.usd": "\(context.cost?.header ?? "0")", "cost.estimated": "\(context.cost?.estimated ?? false)",
                "streamed": "\(streamed)",
                "cache": "\(context.cacheStatus)",
            ]
        )
    }

    /// A request answered from the cache: the hit, and what the answer cost when it was made.
    func recordCacheHit(_ hit: CachedAnswer) {
        self.metrics.recordCacheLookup(hit.kind)
        self.metrics.recordCacheSaving(model: hit.answer.model, dollars: Double(hit.answer.cost) ?? 0)
    }

    /// A request answered with a sidecar error.
    func recordError(_ error: SidecarError) {
        self.metrics.recordError(code: error.code, status: error.status.code)
    }
}
