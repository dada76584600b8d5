import Synchronization

/// A thread-safe circuit breaker for one upstream: `CircuitBreakerStateMachine` behind a `Mutex`.
///
/// The lock is held only for the state-machine call (never across `await`); `onTransition` runs
/// after the lock is released, on the thread that caused the transition.
///
/// ```swift
/// let breaker = CircuitBreaker(upstreamName: "openai")
/// let admission = breaker.admit()
/// guard admission.isAllowed else { /* 503, or try the next candidate */ return }
/// // ... send the request ...
/// breaker.recordSuccess(wasProbe: admission.isProbe)
/// ```
public final class CircuitBreaker: Sendable {
    /// The upstream this breaker protects, for logs and metric labels.
    public let upstreamName: String
    /// The configuration in use.
    public var configuration: CircuitBreakerConfiguration { self.machine.withLock { $0.configuration } }

    private let machine: Mutex<CircuitBreakerStateMachine>
    private let now: @Sendable () -> ContinuousClock.Instant
    private let onTransition: (@Sendable (CircuitBreakerTransition) -> Void)?

    /// Creates a closed breaker.
    ///
    /// - Parameters:
    ///   - upstreamName: the upstream's name, for logs and metrics.
    ///   - configuration: thresholds and timings.
    ///   - now: the time source; tests inject a manual one.
    ///   - onTransition: called (outside the lock) for every state change, e.g. to log and count it.
    public init(
        upstreamName: String,
        configuration: CircuitBreakerConfiguration = CircuitBreakerConfiguration(),
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now },
        onTransition: (@Sendable (CircuitBreakerTransition) -> Void)? = nil
    ) {
        self.upstreamName = upstreamName
        self.machine = Mutex(CircuitBreakerStateMachine(configuration: configuration))
        self.now = now
        self.onTransition = onTransition
    }

    /// The state a request arriving now would find (`.halfOpen` once an open breaker's cooldown has passed).
    public var state: CircuitBreakerState {
        let now = self.now
        return self.machine.withLock { $0.state(at: now()) }
    }

    /// Decides whether a request may be sent now. Every allowed request must later be reported
    /// with `recordSuccess` or `recordFailure`, passing `admission.isProbe` as `wasProbe`.
    public func admit() -> CircuitBreakerAdmission {
        let now = self.now
        let (admission, transition) = self.machine.withLock { $0.admit(now: now()) }
        self.report(transition)
        return admission
    }

    /// Records a successful result; returns the transition it caused, if any.
    @discardableResult
    public func recordSuccess(wasProbe: Bool) -> CircuitBreakerTransition? {
        let now = self.now
        let transition = self.machine.withLock { $0.recordSuccess(now: now(), wasProbe: wasProbe) }
        self.report(transition)
        return transition
    }

    /// Records a failed result (one that should count against the upstream); returns the transition it caused, if any.
    @discardableResult
    public func recordFailure(wasProbe: Bool) -> CircuitBreakerTransition? {
        let now = self.now
        let transition = self.machine.withLock { $0.recordFailure(now: now(), wasProbe: wasProbe) }
        self.report(transition)
        return transition
    }

    /// Records that an admitted request ended without a verdict on the upstream's health (client
    /// cancelled, 4xx answer): nothing is counted, but a probe's permit is freed at once.
    public func recordIgnored(wasProbe: Bool) {
        let now = self.now
        self.machine.withLock { $0.recordIgnored(now: now(), wasProbe: wasProbe) }
    }

    private func report(_ transition: CircuitBreakerTransition?) {
        if let transition, let onTransition = self.onTransition {
            onTransition(transition)
        }
    }
}
