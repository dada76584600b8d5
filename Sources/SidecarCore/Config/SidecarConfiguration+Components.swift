import SidecarPolicy

/// The policy components built from the whole configuration (each component itself knows only
/// its own section).
extension RouteSelector {
    public init(configuration: SidecarConfiguration) {
        self.init(
            routing: configuration.routing,
            models: configuration.models,
            defaultUpstream: configuration.defaultUpstreamName
        )
    }
}

extension PriceTable {
    public init(configuration: SidecarConfiguration) {
        self.init(models: configuration.models)
    }
}

extension ResilienceRegistry {
    /// - Parameter onTransition: called (outside any lock) when a breaker changes state.
    public convenience init(
        configuration: SidecarConfiguration,
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now },
        onTransition: (@Sendable (ResilienceRegistry.BreakerKey, CircuitBreakerTransition) -> Void)? = nil
    ) {
        self.init(
            upstreams: configuration.upstreams.map(\.name),
            models: configuration.models,
            configuration: configuration.resilience,
            now: now,
            onTransition: onTransition
        )
    }
}
