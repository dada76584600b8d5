/// The kinds of traffic an upstream serves, each behind a circuit breaker of its own: an
/// upstream that cannot serve one kind (a server started without embeddings answers 500 to
/// every embeddings call) keeps serving the others.
public enum TrafficClass: String, Sendable, CaseIterable, Hashable {
    /// Chat and legacy completions.
    case generation
    case embeddings
    /// Other `/v1/*` paths and Ollama's native API.
    case other
}

/// The live resilience state for one configuration: a circuit breaker per upstream and kind of
/// traffic, a retry budget per upstream, and balancers over the upstreams serving each model.
public final class ResilienceRegistry: Sendable {
    /// A breaker's place: which upstream, which traffic.
    public struct BreakerKey: Hashable, Sendable {
        public var upstream: String
        public var traffic: TrafficClass

        public init(upstream: String, traffic: TrafficClass) {
            self.upstream = upstream
            self.traffic = traffic
        }
    }

    public let breakers: [BreakerKey: CircuitBreaker]
    public let budgets: [String: RetryBudget]
    private let modelBalancers: [BreakerKey: UpstreamBalancer]
    private let upstreamBalancers: [BreakerKey: UpstreamBalancer]
    private let upstreamNames: [String]

    /// - Parameters:
    ///   - upstreams: the upstream names: one retry budget each, and a breaker per kind of traffic.
    ///   - models: the models: balancers over the upstreams serving each.
    ///   - onTransition: called (outside any lock) when a breaker changes state.
    public init(
        upstreams: [String],
        models: [ModelConfiguration],
        configuration: ResilienceConfiguration,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now },
        onTransition: (@Sendable (BreakerKey, CircuitBreakerTransition) -> Void)? = nil
    ) {
        var breakers: [BreakerKey: CircuitBreaker] = [:]
        var budgets: [String: RetryBudget] = [:]
        var upstreamBalancers: [BreakerKey: UpstreamBalancer] = [:]
        for name in upstreams {
            budgets[name] = RetryBudget(upstreamName: name, configuration: configuration.retryBudget, now: now)
            for traffic in TrafficClass.allCases {
                let key = BreakerKey(upstream: name, traffic: traffic)
                var report: (@Sendable (CircuitBreakerTransition) -> Void)?
                if let onTransition { report = { transition in onTransition(key, transition) } }
                let breaker = CircuitBreaker(
                    upstreamName: name,
                    configuration: configuration.breaker,
                    now: now,
                    onTransition: report
                )
                breakers[key] = breaker
                upstreamBalancers[key] = UpstreamBalancer(instances: [.init(id: name, breaker: breaker)])
            }
        }
        var modelBalancers: [BreakerKey: UpstreamBalancer] = [:]
        for model in models {
            for traffic in TrafficClass.allCases {
                let instances = model.upstreams.map {
                    UpstreamBalancer.Instance(id: $0, breaker: breakers[BreakerKey(upstream: $0, traffic: traffic)])
                }
                modelBalancers[BreakerKey(upstream: model.name, traffic: traffic)] = UpstreamBalancer(
                    instances: instances,
                    strategy: model.balance
                )
            }
        }
        self.breakers = breakers
        self.budgets = budgets
        self.modelBalancers = modelBalancers
        self.upstreamBalancers = upstreamBalancers
        self.upstreamNames = upstreams
    }

    /// The balancer for a configured model, else the one for `fallbackUpstream` alone.
    package func balancer(model: String, fallbackUpstream: String, traffic: TrafficClass) -> UpstreamBalancer? {
        self.modelBalancers[BreakerKey(upstream: model, traffic: traffic)]
            ?? self.upstreamBalancers[BreakerKey(upstream: fallbackUpstream, traffic: traffic)]
    }

    /// The breaker guarding `traffic` to `upstream`.
    public func breaker(_ upstream: String, _ traffic: TrafficClass = .generation) -> CircuitBreaker? {
        self.breakers[BreakerKey(upstream: upstream, traffic: traffic)]
    }

    /// Breaker states per upstream (in configuration order), for `/readyz`.
    public var breakerStates: [(upstream: String, states: [(traffic: TrafficClass, state: CircuitBreakerState)])] {
        self.upstreamNames.map { name in
            (
                name,
                TrafficClass.allCases.compactMap { traffic in self.breaker(name, traffic).map { (traffic, $0.state) } }
            )
        }
    }
}
