import Logging
import SidecarPolicy

/// Record phase: the request's metrics and its one access-log line; for a routed request, its
/// decision (kept for feedback) and its model's latency (for the `latency` strategy).
final class RequestRecorder: Sendable {
    let metrics: SidecarMetrics
    let logger: Logger
    let journal: RouteJournal
    let latency: LatencyBoard
    let ledger: SpendLedger
    /// One JSON line per request, when `server.access_log` is on.
    let accessLog: AccessLog?
    let stats: StatsBoard
    /// Per-app token rates, charged with what answers really used (`nil`: no token rates).
    let rates: AppRateLimiter?

    init(
        metrics: SidecarMetrics,
        logger: Logger,
        journal: RouteJournal,
        latency: LatencyBoard,
        ledger: SpendLedger,
        accessLog: AccessLog?,
        stats: StatsBoard,
        rates: AppRateLimiter? = nil
    ) {
        self.metrics = metrics
        self.logger = logger
        self.journal = journal
        self.latency = latency
        self.ledger = ledger
        self.accessLog = accessLog
        self.stats = stats
        self.rates = rates
    }

    func record(_ context: RequestContext, status: Int, streamed: Bool) {
        let request = context.request
        let model = context.served?.model ?? ""
        if let route = context.route, let served = context.served {
            self.metrics.recordRouteDecision(router: route.score.router)
            self.journal.remember(
                request.requestID,
                .init(
                    model: served.model,
                    tier: route.tier,
                    score: route.score.value,
                    router: route.score.router.rawValue,
                    app: context.app
                )
            )
            if status < 400, served.fallbackFrom == nil, let answeredAt = context.answeredAt {
                let waited = (answeredAt - request.receivedAt).components
                self.latency.record(
                    model: served.model,
                    seconds: Double(waited.seconds) + Double(waited.attoseconds) / 1e18
                )
            }
        }
        self.metrics.recordRequest(
            endpoint: request.endpoint,
            model: model,
            tier: context.route?.tier.map(String.init) ?? "",
            cache: context.decoded?.isPassThrough == false ? context.cacheStatus : "",
            status: status,
            since: request.receivedAt
        )
        if let cost = context.cost {
            self.metrics.recordCost(model: model, app: context.app, dollars: cost.dollars, estimated: cost.estimated)
            if context.cacheStatus != "exact" && context.cacheStatus != "semantic" {
                self.ledger.record(app: context.app, model: model, dollars: cost.dollars)
                // The token rate: what the answer used, less the estimate charged on arrival.
                self.rates?.charge(
                    app: context.app,
                    tokens: (cost.promptTokens ?? 0) + (cost.completionTokens ?? 0) - context.admittedTokens
                )
            }
        }
        self.accessLog?.record(context, status: status, streamed: streamed)
        let counted = context.decoded.map { !$0.isPassThrough } ?? false
        self.stats.record(
            status: status,
            costUSD: context.cost?.dollars ?? 0,
            savedUSD: context.savedUSD,
            cache: counted ? context.cacheStatus : nil,
            tier: context.route?.tier,
            router: context.route?.score.router
        )
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
    func recordCacheHit(_ hit: CachedAnswer, context: RequestContext) {
        let app = context.app
        let saved = Double(hit.answer.cost) ?? 0
        context.savedUSD = saved
        self.metrics.recordCacheLookup(hit.kind)
        self.metrics.recordCacheSaving(model: hit.answer.model, app: app, dollars: saved)
        self.ledger.record(app: app, model: hit.answer.model, dollars: 0, saved: saved, hit: true)
    }

    /// A request answered with a sidecar error.
    func recordError(_ error: SidecarError) {
        self.metrics.recordError(code: error.code, status: error.status.code)
    }
}
