/// The `# HELP` line of every metric the sidecar records. swift-metrics carries no help text,
/// so `/metrics` adds these above each family's `# TYPE` line.
enum MetricHelp {
    static let texts: [String: String] = [
        "llm_sidecar_requests_total": "Answered requests by endpoint, model, routed tier, cache result and status.",
        "llm_sidecar_request_duration_seconds": "Time from a request's arrival to its answer's end, by endpoint.",
        "llm_sidecar_upstream_responses_total": "Upstream response heads by upstream and status.",
        "llm_sidecar_upstream_first_byte_seconds": "Time to an upstream's response head, by upstream.",
        "llm_sidecar_upstream_failures_total": "Failed upstream attempts by upstream and reason.",
        "llm_sidecar_upstream_connections_opened_total": "Connections opened to upstreams, by host:port.",
        "llm_sidecar_upstream_tls_handshakes_total": "TLS handshakes completed with upstreams, by host:port.",
        "llm_sidecar_upstream_http2_connections_total":
            "Upstream connections whose TLS handshake chose HTTP/2, by host:port.",
        "llm_sidecar_retries_total": "Retried upstream attempts by upstream and reason.",
        "llm_sidecar_fallbacks_total":
            "Requests answered by a fallback model, by the model tried first and the fallback.",
        "llm_sidecar_breaker_state": "Circuit breaker state by upstream and traffic (0 closed, 1 half-open, 2 open).",
        "llm_sidecar_breaker_transitions_total": "Circuit breaker state changes by upstream, traffic and new state.",
        "llm_sidecar_tokens_total": "Tokens the upstreams reported, by model and kind (prompt or completion).",
        "llm_sidecar_cost_usd_total": "US dollars spent, by model, app and source (usage or estimate).",
        "llm_sidecar_saved_usd_total":
            "US dollars the cache saved (what the answers cost when made), by model and app.",
        "llm_sidecar_budget_refusals_total": "Requests refused because the app's daily budget was spent, by app.",
        "llm_sidecar_errors_total": "Requests answered with a sidecar error, by code and status.",
        "llm_sidecar_requests_in_flight": "Proxied requests holding one of the [limits] max_in_flight slots.",
        "llm_sidecar_requests_queued": "Proxied requests waiting for a slot ([limits] max_queued).",
        "llm_sidecar_route_decisions_total": "Routed requests by the scorer that decided (learned or heuristic).",
        "llm_sidecar_cache_lookups_total": "Cache lookups by result (exact, semantic, miss, bypass).",
        "llm_sidecar_cache_stores_total": "Answers stored in the cache, by kind (whole or stream).",
        "llm_sidecar_cache_semantic_skipped_total": "Requests without a semantic lookup, by reason.",
        "llm_sidecar_cache_backend_errors_total":
            "Failed or timed-out shared cache operations, by backend and operation.",
        "llm_sidecar_cache_backend_up": "Whether the shared cache backend answers (1) or not (0), by backend.",
    ]

    /// `exposition` with a `# HELP` line before each known family's `# TYPE` line.
    static func adding(to exposition: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(exposition.count + 4096)
        let prefix = Array("# TYPE ".utf8)
        for line in exposition.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if line.starts(with: prefix) {
                let name = line.dropFirst(prefix.count).prefix { $0 != UInt8(ascii: " ") }
                if let help = Self.texts[String(decoding: name, as: UTF8.self)] {
                    output.append(contentsOf: "# HELP ".utf8)
                    output.append(contentsOf: name)
                    output.append(UInt8(ascii: " "))
                    output.append(contentsOf: help.utf8)
                    output.append(UInt8(ascii: "\n"))
                }
            }
            output.append(contentsOf: line)
            output.append(UInt8(ascii: "\n"))
        }
        if exposition.last == UInt8(ascii: "\n") { output.removeLast() }
        return output
    }
}
