/// The externally visible state of a circuit breaker, for metrics, logs and `/readyz`.
public enum CircuitBreakerState: Sendable, Hashable, CaseIterable {
    /// Requests flow; results are counted.
    case closed
    /// Requests are rejected until the cooldown ends.
    case open
    /// A limited number of probes are let through to test the upstream.
    case halfOpen

    /// A metric-label-safe name: `closed`, `open` or `half_open`.
    public var label: String {
        switch self {
        case .closed: "closed"
        case .open: "open"
        case .halfOpen: "half_open"
        }
    }
}

/// What a circuit breaker says about one request about to be sent.
public enum CircuitBreakerAdmission: Sendable, Hashable {
    /// Send it (breaker closed). Report the result with `wasProbe: false`.
    case allowed
    /// Send it as a half-open probe. Report the result with `wasProbe: true`.
    case allowedAsProbe
    /// Do not send it; the breaker may admit requests again after `retryAfter`.
    case rejected(retryAfter: Duration)

    /// Whether the request may be sent.
    public var isAllowed: Bool {
        switch self {
        case .allowed, .allowedAsProbe: true
        case .rejected: false
        }
    }

    /// Whether the request is a probe (pass this as `wasProbe` when recording its result).
    public var isProbe: Bool { self == .allowedAsProbe }
}

/// A state change of a circuit breaker, returned so the shell can log and count it.
public struct CircuitBreakerTransition: Sendable, Hashable {
    /// Why the state changed.
    public enum Reason: String, Sendable, Hashable, CaseIterable {
        /// Closed -> open: `consecutiveFailureThreshold` failures in a row.
        case consecutiveFailures = "consecutive_failures"
        /// Closed -> open: the failure ratio over the window reached `failureRateThreshold`.
        case failureRate = "failure_rate"
        /// Open -> half-open: the cooldown ended and a request arrived.
        case cooldownElapsed = "cooldown_elapsed"
        /// Half-open -> open: a probe failed.
        case probeFailed = "probe_failed"
        /// Half-open -> closed: `successesToClose` probes succeeded.
        case probesSucceeded = "probes_succeeded"

        /// A metric-label-safe name.
        public var label: String { self.rawValue }
    }

    /// The state before.
    public var from: CircuitBreakerState
    /// The state after.
    public var to: CircuitBreakerState
    /// Why it changed.
    public var reason: Reason

    /// Creates a transition.
    public init(from: CircuitBreakerState, to: CircuitBreakerState, reason: Reason) {
        self.from = from
        self.to = to
        self.reason = reason
    }
}
