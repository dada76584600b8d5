/// `[retry]`, `[retry_budget]` and `[breaker]`: how upstream failures are absorbed.
public struct ResilienceConfiguration: Sendable, Equatable {
    public var retry: RetryPolicy
    public var retryBudget: RetryBudget.Configuration
    public var breaker: CircuitBreakerConfiguration

    public init(
        retry: RetryPolicy = .init(),
        retryBudget: RetryBudget.Configuration = .init(),
        breaker: CircuitBreakerConfiguration = .init()
    ) {
        self.retry = retry
        self.retryBudget = retryBudget
        self.breaker = breaker
    }
}
