import SidecarPolicy

/// What the phases of one request share, filled in as they run: the parsed view, the score
/// and its features, the route, who answered and what it cost. (The request's embedding joins
/// it when the semantic cache lands: computed once, read by the cache and the router.)
struct RequestContext {
    let request: ProxyRequest
    /// Decode: what kind of call this is and, for completions, the parsed view.
    var decoded: DecodedRequest?
    /// Score: how hard the prompt is (completions only).
    var score: ComplexityScore?
    /// Route: the model to ask, its fallbacks and how to forward.
    var route: RoutePlan?
    /// Forward: the model and upstream that answered.
    var served: ForwardingStateMachine.Served?
    /// Price: the answer's cost (`nil` for pass-through calls, which are not priced).
    var cost: CostQuote?
    /// Cache lookup: `miss` until the cache lands.
    var cacheStatus = "miss"

    init(request: ProxyRequest) {
        self.request = request
    }
}
