import SidecarPolicy

/// What the phases of one request share, filled in as they run: the parsed view, the cache's
/// plan and the prompt's embedding (computed once, for the semantic cache and the router), the
/// score and its features, the route, who answered and what it cost.
///
/// A reference, so that handing it to a phase costs one retain, not a copy of every field.
/// Event-loop confined, like the lifecycle that owns it.
final class RequestContext {
    let request: ProxyRequest
    /// Decode: what kind of call this is and, for completions, the parsed view.
    var decoded: DecodedRequest?
    /// Score: how hard the prompt is (completions only).
    var score: ComplexityScore?
    /// Route: why the model was chosen (completions only).
    var route: RouteDecision?
    /// Forward: the model and upstream that answered.
    var served: ForwardingStateMachine.Served?
    /// Price: the answer's cost (`nil` for pass-through calls, which are not priced).
    var cost: CostQuote?
    /// Cache lookup: `miss`, `exact`, `semantic` or `bypass` (`X-Sidecar-Cache`).
    var cacheStatus = "miss"
    /// Cache lookup: the keys, and whether the answer may be stored.
    var cachePlan: CachePlan?
    /// Cache lookup (or score): the last user message's embedding, for the semantic cache and
    /// the learned router.
    var embedding: [Float]?
    /// Whether the embedder was asked already (busy or late: not again).
    var embeddingTried = false
    /// Route: the app the request is attributed to, and what it had spent today before it.
    var app = AppAttribution.defaultApp
    var spentToday: Double?
    /// Cache lookup: what a hit's answer cost when it was made (saved by serving it again).
    var savedUSD = 0.0
    /// Admission: the prompt tokens charged to the app's token rate on arrival (an estimate).
    var admittedTokens = 0
    /// Forward: when the answer's head arrived (the latency strategy's sample).
    var answeredAt: ContinuousClock.Instant?

    init(request: ProxyRequest) {
        self.request = request
    }
}
