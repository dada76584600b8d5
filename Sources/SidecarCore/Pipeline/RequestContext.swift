import SidecarPolicy

/// What the phases of one request share, filled in as they run: the parsed view, the score
/// and its features, the route, who answered and what it cost. (The request's embedding joins
/// it when the semantic cache lands: computed once, read by the cache and the router.)
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
    /// Cache lookup: `miss` until the cache lands.
    var cacheStatus = "miss"

    init(request: ProxyRequest) {
        self.request = request
    }
}
