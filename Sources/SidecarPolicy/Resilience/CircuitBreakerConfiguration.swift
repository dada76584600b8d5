/// Tuning of one upstream's circuit breaker.
///
/// The breaker opens when either trigger fires while closed:
/// - `consecutiveFailureThreshold` failures in a row, or
/// - a failure ratio at or above `failureRateThreshold` over the sliding `window`, once the window
///   holds at least `minimumRequestsInWindow` results.
///
/// It stays open for `cooldown`, then lets probes through (half-open). Out-of-range values are
/// clamped in `init` (counts to at least 1, durations to at least zero / one nanosecond), so a
/// configuration can never make the breaker trap; reject bad values at config-validation time.
///
/// ```swift
/// let configuration = CircuitBreakerConfiguration(consecutiveFailureThreshold: 3, cooldown: .seconds(5))
/// let breaker = CircuitBreaker(upstreamName: "openai", configuration: configuration)
/// ```
public struct CircuitBreakerConfiguration: Sendable, Hashable {
    /// Failures in a row (while closed) that open the breaker. Default 5.
    public var consecutiveFailureThreshold: Int
    /// Failure ratio (0...1) over the window that opens the breaker, compared with `>=`. Default 0.5.
    public var failureRateThreshold: Double
    /// Results the window must hold before the failure ratio is considered. Default 20.
    public var minimumRequestsInWindow: Int
    /// Length of the sliding window for the failure ratio. Default 30 s.
    public var window: Duration
    /// Number of buckets the window is counted in; results expire one bucket at a time. Default 10.
    public var windowBuckets: Int
    /// How long the breaker stays open before admitting probes; also the lifetime of a probe permit. Default 10 s.
    public var cooldown: Duration
    /// Maximum number of probes admitted and not yet reported back during a half-open period. Default 1.
    ///
    /// A probe success frees its permit (so `successesToClose > halfOpenMaxProbes` still works);
    /// a permit that is never reported back expires after `cooldown`.
    public var halfOpenMaxProbes: Int
    /// Probe successes needed to close again. Default 1.
    public var successesToClose: Int

    /// Creates a configuration; every argument has the documented default.
    public init(
        consecutiveFailureThreshold: Int = 5,
        failureRateThreshold: Double = 0.5,
        minimumRequestsInWindow: Int = 20,
        window: Duration = .seconds(30),
        windowBuckets: Int = 10,
        cooldown: Duration = .seconds(10),
        halfOpenMaxProbes: Int = 1,
        successesToClose: Int = 1
    ) {
        self.consecutiveFailureThreshold = max(1, consecutiveFailureThreshold)
        self.failureRateThreshold = failureRateThreshold.isNaN ? 0.5 : min(1, max(0, failureRateThreshold))
        self.minimumRequestsInWindow = max(1, minimumRequestsInWindow)
        self.window = max(.nanoseconds(1), window)
        self.windowBuckets = max(1, windowBuckets)
        self.cooldown = max(.zero, cooldown)
        self.halfOpenMaxProbes = max(1, halfOpenMaxProbes)
        self.successesToClose = max(1, successesToClose)
    }
}
