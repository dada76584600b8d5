import CoreMetrics
import Foundation
import SidecarOpenAI
import SidecarPolicy

/// Every metric the sidecar records, with its labels, in one place.
///
/// Names are prefixed `llm_sidecar_`. The library receives a `MetricsFactory`; the executable
/// decides the backend (Prometheus) and serves it at `/metrics`.
public struct SidecarMetrics: Sendable {
    private let handles: MetricHandles
    /// The cache's per-request counters, made once (no lookup under a shared lock per request).
    private let cacheLookups: [String: Counter]
    private let cacheStores: [String: Counter]
    private let routeDecisions: [String: Counter]

    public init(factory: any MetricsFactory) {
        let handles = MetricHandles(factory: factory)
        self.handles = handles
        self.cacheLookups = Dictionary(
            uniqueKeysWithValues: ["exact", "semantic", "miss", "bypass"].map {
                ($0, handles.counter("llm_sidecar_cache_lookups_total", [("result", $0)]))
            }
        )
        self.cacheStores = Dictionary(
            uniqueKeysWithValues: ["whole", "stream"].map {
                ($0, handles.counter("llm_sidecar_cache_stores_total", [("kind", $0)]))
            }
        )
        self.routeDecisions = Dictionary(
            uniqueKeysWithValues: ComplexityScore.Router.allCases.map {
                ($0.rawValue, handles.counter("llm_sidecar_route_decisions_total", [("router", $0.rawValue)]))
            }
        )
    }

    /// `llm_sidecar_route_decisions_total{router}`: routed requests by the scorer that decided
    /// (`learned`, or `heuristic` when no router is loaded or the embedding did not come in time).
    func recordRouteDecision(router: ComplexityScore.Router) {
        self.routeDecisions[router.rawValue]?.increment()
    }

    /// `llm_sidecar_requests_total{endpoint,model,tier,cache,status}` and the request duration
    /// histogram. `tier` is the routed tier's index (empty when not routed by tier).
    func recordRequest(
        endpoint: ProxyRequest.Endpoint,
        model: String,
        tier: String = "",
        cache: String = "",
        status: Int,
        since start: ContinuousClock.Instant
    ) {
        let series = self.handles.requestSeries(
            endpoint: endpoint.label,
            model: model,
            tier: tier,
            cache: cache,
            status: status
        )
        series.requests.increment()
        series.duration.recordNanoseconds(Self.nanoseconds(since: start))
    }

    /// Time to the upstream's response head, by upstream and status.
    func recordUpstreamHead(upstream: String, status: Int, since start: ContinuousClock.Instant) {
        let series = self.handles.upstreamSeries(upstream: upstream, status: status)
        series.responses.increment()
        series.firstByte.recordNanoseconds(Self.nanoseconds(since: start))
    }

    /// `llm_sidecar_upstream_failures_total{upstream,reason}`: no usable response.
    func recordUpstreamFailure(upstream: String, reason: String) {
        self.handles.counter("llm_sidecar_upstream_failures_total", [("upstream", upstream), ("reason", reason)])
            .increment()
    }

    /// `llm_sidecar_tokens_total{model,kind}` with kind `prompt` or `completion`.
    func recordTokens(model: String, usage: OpenAIUsage) {
        let series = self.handles.series(model: model)
        series.promptTokens.increment(by: usage.promptTokens)
        series.completionTokens.increment(by: usage.completionTokens)
    }

    /// `llm_sidecar_cost_usd_total{model,source}`: `source` is `usage` (the upstream's token
    /// counts) or `estimate` (estimated from the text, when the upstream reported none).
    func recordCost(model: String, app: String, dollars: Double, estimated: Bool = false) {
        guard dollars > 0 else { return }
        let series = self.handles.costSeries(model: model, app: app)
        (estimated ? series.estimatedCost : series.cost).increment(by: dollars)
    }

    /// `llm_sidecar_budget_refusals_total{app}`: requests refused because the app's daily
    /// budget was spent.
    func recordBudgetRefusal(app: String) {
        self.handles.counter("llm_sidecar_budget_refusals_total", [("app", app)]).increment()
    }

    /// `llm_sidecar_errors_total{code}`: requests answered with a sidecar error.
    func recordError(code: String, status: Int) {
        self.handles.counter("llm_sidecar_errors_total", [("code", code), ("status", String(status))]).increment()
    }

    /// `llm_sidecar_retries_total{upstream,reason}`.
    func recordRetry(upstream: String, reason: String) {
        self.handles.counter("llm_sidecar_retries_total", [("upstream", upstream), ("reason", reason)]).increment()
    }

    /// `llm_sidecar_fallbacks_total{from,to}`: a fallback model served the request.
    func recordFallback(from: String, to: String) {
        self.handles.counter("llm_sidecar_fallbacks_total", [("from", from), ("to", to)])
            .increment()
    }

    /// `llm_sidecar_breaker_transitions_total{upstream,traffic,to}` and the state gauge
    /// `llm_sidecar_breaker_state{upstream,traffic}` (0 closed, 1 half-open, 2 open); `traffic` is
    /// `generation`, `embeddings` or `other` (each has a breaker of its own).
    func recordBreakerTransition(upstream: String, traffic: String, to state: CircuitBreakerState) {
        self.handles.counter(
            "llm_sidecar_breaker_transitions_total",
            [("upstream", upstream), ("traffic", traffic), ("to", state.label)]
        ).increment()
        let value: Double
        switch state {
        case .closed: value = 0
        case .halfOpen: value = 1
        case .open: value = 2
        }
        self.handles.gauge("llm_sidecar_breaker_state", [("upstream", upstream), ("traffic", traffic)]).record(
            value
        )
    }

    /// `llm_sidecar_cache_lookups_total{result}`: `exact`, `semantic`, `miss` or `bypass`.
    func recordCacheLookup(_ result: String) {
        (self.cacheLookups[result] ?? self.handles.counter("llm_sidecar_cache_lookups_total", [("result", result)]))
            .increment()
    }

    /// `llm_sidecar_saved_usd_total{model,app}`: what the answers served from the cache cost
    /// when they were made.
    func recordCacheSaving(model: String, app: String, dollars: Double) {
        guard dollars > 0 else { return }
        self.handles.costSeries(model: model, app: app).saved.increment(by: dollars)
    }

    /// `llm_sidecar_cache_stores_total{kind}`: `whole` or `stream` answers stored.
    func recordCacheStore(kind: String) {
        (self.cacheStores[kind] ?? self.handles.counter("llm_sidecar_cache_stores_total", [("kind", kind)]))
            .increment()
    }

    /// `llm_sidecar_cache_semantic_skipped_total{reason}`: requests that got no semantic lookup
    /// (`busy`: the embedder's queue was over the latency budget; `late`, `too_long`, `failed`).
    func recordSemanticSkip(reason: String) {
        self.handles.counter("llm_sidecar_cache_semantic_skipped_total", [("reason", reason)]).increment()
    }

    /// `llm_sidecar_cache_backend_errors_total{backend,operation}`: a shared store that failed or
    /// timed out (the request went on uncached).
    func recordCacheBackendError(backend: String, operation: String) {
        self.handles.counter(
            "llm_sidecar_cache_backend_errors_total",
            [("backend", backend), ("operation", operation)]
        ).increment()
    }

    /// `llm_sidecar_cache_backend_up{backend}`: 1 while the shared store answers.
    func recordCacheBackendUp(backend: String, up: Bool) {
        self.handles.gauge("llm_sidecar_cache_backend_up", [("backend", backend)]).record(up ? 1 : 0)
    }

    /// `llm_sidecar_upstream_connections_opened_total{endpoint}`: connections opened to an
    /// upstream's `host:port` (each one a TCP handshake, and for HTTPS a TLS handshake too).
    func recordUpstreamConnectionOpened(endpoint: String) {
        self.handles.counter("llm_sidecar_upstream_connections_opened_total", [("endpoint", endpoint)]).increment()
    }

    /// `llm_sidecar_upstream_http2_connections_total{endpoint}`: connections whose TLS handshake
    /// chose HTTP/2 (each carries many requests at once).
    func recordUpstreamHTTP2Connection(endpoint: String) {
        self.handles.counter("llm_sidecar_upstream_http2_connections_total", [("endpoint", endpoint)]).increment()
    }

    /// `llm_sidecar_upstream_tls_handshakes_total{endpoint}`: TLS handshakes completed with an
    /// upstream (none is resumed: each is a full handshake).
    func recordUpstreamTLSHandshake(endpoint: String) {
        self.handles.counter("llm_sidecar_upstream_tls_handshakes_total", [("endpoint", endpoint)]).increment()
    }

    /// `llm_sidecar_requests_in_flight` and `llm_sidecar_requests_queued` (`[limits]`), set when
    /// `/metrics` is read (not on every request).
    func recordAdmission(inFlight: Int, queued: Int) {
        self.handles.gauge("llm_sidecar_requests_in_flight", []).record(inFlight)
        self.handles.gauge("llm_sidecar_requests_queued", []).record(queued)
    }

    private static func nanoseconds(since start: ContinuousClock.Instant) -> Int64 {
        (ContinuousClock.now - start).saturatingNanoseconds
    }
}
