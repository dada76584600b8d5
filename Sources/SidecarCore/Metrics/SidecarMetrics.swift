import CoreMetrics
import Foundation

/// Every metric the sidecar records, with its labels, in one place.
///
/// Names are prefixed `llm_sidecar_`. The library receives a `MetricsFactory`; the executable
/// decides the backend (Prometheus) and serves it at `/metrics`.
public struct SidecarMetrics: Sendable {
    private let factory: any MetricsFactory

    public init(factory: any MetricsFactory) {
        self.factory = factory
    }

    /// `llm_sidecar_requests_total{endpoint,model,status}` and the request duration histogram.
    func recordRequest(
        endpoint: ProxyRequest.Endpoint,
        model: String,
        status: Int,
        since start: ContinuousClock.Instant
    ) {
        let dimensions = [("endpoint", endpoint.label), ("model", model), ("status", String(status))]
        Counter(label: "llm_sidecar_requests_total", dimensions: dimensions, factory: self.factory).increment()
        Timer(
            label: "llm_sidecar_request_duration_seconds",
            dimensions: [("endpoint", endpoint.label)],
            factory: self.factory
        ).recordNanoseconds(Self.nanoseconds(since: start))
    }

    /// Time to the upstream's response head, by upstream and status.
    func recordUpstreamHead(upstream: String, status: Int, since start: ContinuousClock.Instant) {
        Counter(
            label: "llm_sidecar_upstream_responses_total",
            dimensions: [("upstream", upstream), ("status", String(status))],
            factory: self.factory
        ).increment()
        Timer(
            label: "llm_sidecar_upstream_first_byte_seconds",
            dimensions: [("upstream", upstream)],
            factory: self.factory
        ).recordNanoseconds(Self.nanoseconds(since: start))
    }

    /// `llm_sidecar_upstream_failures_total{upstream,reason}`: no usable response.
    func recordUpstreamFailure(upstream: String, reason: String) {
        Counter(
            label: "llm_sidecar_upstream_failures_total",
            dimensions: [("upstream", upstream), ("reason", reason)],
            factory: self.factory
        ).increment()
    }

    /// `llm_sidecar_tokens_total{model,kind}` with kind `prompt` or `completion`.
    func recordTokens(model: String, usage: OpenAIUsage) {
        Counter(
            label: "llm_sidecar_tokens_total",
            dimensions: [("model", model), ("kind", "prompt")],
            factory: self.factory
        )
        .increment(by: usage.promptTokens)
        Counter(
            label: "llm_sidecar_tokens_total",
            dimensions: [("model", model), ("kind", "completion")],
            factory: self.factory
        ).increment(by: usage.completionTokens)
    }

    /// `llm_sidecar_cost_usd_total{model}`.
    func recordCost(model: String, dollars: Decimal) {
        guard dollars > 0 else { return }
        FloatingPointCounter(label: "llm_sidecar_cost_usd_total", dimensions: [("model", model)], factory: self.factory)
            .increment(by: NSDecimalNumber(decimal: dollars).doubleValue)
    }

    /// `llm_sidecar_errors_total{code}`: requests answered with a sidecar error.
    func recordError(code: String, status: Int) {
        Counter(
            label: "llm_sidecar_errors_total",
            dimensions: [("code", code), ("status", String(status))],
            factory: self.factory
        ).increment()
    }

    /// `llm_sidecar_retries_total{upstream,reason}`.
    func recordRetry(upstream: String, reason: String) {
        Counter(
            label: "llm_sidecar_retries_total",
            dimensions: [("upstream", upstream), ("reason", reason)],
            factory: self.factory
        ).increment()
    }

    /// `llm_sidecar_fallbacks_total{from,to}`: a fallback model served the request.
    func recordFallback(from: String, to: String) {
        Counter(label: "llm_sidecar_fallbacks_total", dimensions: [("from", from), ("to", to)], factory: self.factory)
            .increment()
    }

    /// `llm_sidecar_breaker_transitions_total{upstream,to}` and the state gauge
    /// `llm_sidecar_breaker_state{upstream}` (0 closed, 1 half-open, 2 open).
    func recordBreakerTransition(upstream: String, to state: CircuitBreakerState) {
        Counter(
            label: "llm_sidecar_breaker_transitions_total",
            dimensions: [("upstream", upstream), ("to", state.label)],
            factory: self.factory
        ).increment()
        let value: Double
        switch state {
        case .closed: value = 0
        case .halfOpen: value = 1
        case .open: value = 2
        }
        Gauge(label: "llm_sidecar_breaker_state", dimensions: [("upstream", upstream)], factory: self.factory).record(
            value
        )
    }

    private static func nanoseconds(since start: ContinuousClock.Instant) -> Int64 {
        (ContinuousClock.now - start).saturatingNanoseconds
    }
}
