/// The live resilience state for one configuration: a circuit breaker and a retry budget per
/// upstream, and a balancer per model over the upstreams serving it.
public final class ResilienceRegistry: Sendable {
    public let breakers: [String: CircuitBreaker]
    public let budgets: [String: RetryBudget]
    private let modelBalancers: [String: UpstreamBalancer]
    private let upstreamBalancers: [String: UpstreamBalancer]

    /// - Parameter onTransition: called (outside any lock) when a breaker changes state.
    /// - Parameters:
    ///   - upstreams: the upstream names: one breaker and one retry budget each.
    ///   - models: the models: one balancer each over the upstreams serving it.
    public init(
        upstreams: [String],
        models: [ModelConfiguration],
        configuration: ResilienceConfiguration,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now },
        onTransition: (@Sendable (String, CircuitBreakerTransition) -> Void)? = nil
    ) {
        var breakers: [String: CircuitBreaker] = [:]
        var budgets: [String: RetryBudget] = [:]
        var upstreamBalancers: [String: UpstreamBalancer] = [:]
        for name in upstreams {
            var perUpstream: (@Sendable (CircuitBreakerTransition) -> Void)?
            if let onTransition {
                perUpstream = { transition in onTransition(name, transition) }
            }
            let breaker = CircuitBreaker(
                upstreamName: name,
                configuration: configuration.breaker,
                now: now,
                onTransition: perUpstream
            )
            breakers[name] = breaker
            budgets[name] = RetryBudget(
                upstreamName: name,
                configuration: configuration.retryBudget,
                now: now
            )
            upstreamBalancers[name] = UpstreamBalancer(instances: [.init(id: name, breaker: breaker)])
        }
        var modelBalancers: [String: UpstreamBalancer] = [:]
        for model in models {
            let instances = model.upstreams.map { UpstreamBalancer.Instance(id: $0, breaker: breakers[$0]) }
            modelBalancers[model.name] = UpstreamBalancer(instances: instances, strategy: model.balance)
        }
        self.breakers = breakers
        self.budgets = budgets
        self.modelBalancers = modelBalancers
        self.upstreamBalancers = upstreamBalancers
    }

    /// The balancer for a configured model, else the one for `fallbackUpstream` alone.
    package func balancer(model: String, fallbackUpstream: String) -> UpstreamBalancer? {
        self.modelBalancers[model] ?? self.upstreamBalancers[fallbackUpstream]
    }

    /// Breaker state per upstream, for `/readyz` and metrics.
    public var breakerStates: [(upstream: String, state: CircuitBreakerState)] {
        self.breakers.keys.sorted().compactMap { name in self.breakers[name].map { (name, $0.state) } }
    }
}
