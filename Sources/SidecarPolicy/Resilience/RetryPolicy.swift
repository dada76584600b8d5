/// When and how soon to retry a failed upstream attempt: configuration plus one pure decision function.
///
/// Rules, checked in this order by `decision(attempt:failure:retryAfter:timeLeft:jitter:budgetAllows:)`:
/// 1. Only failures before the first byte reached the client are retried: `.connectFailed`,
///    `.timedOutBeforeFirstByte` and `.status(s)` with `s` in `retryableStatuses`.
/// 2. At most `maxAttempts` attempts in total (the first one included).
/// 3. A `Retry-After` above `maxRetryAfter` means "not soon": give up now rather than hold the client.
/// 4. The wait is `max(Retry-After, backoff)`; if it would reach the deadline, give up now.
/// 5. The upstream's retry budget must allow one more retry.
///
/// ```swift
/// let policy = RetryPolicy()
/// switch policy.decision(attempt: 1, failure: .status(503), retryAfter: nil, timeLeft: .seconds(20),
///                        jitter: .random(in: 0..<1), budgetAllows: budget.canRetry()) {
/// case .retry(let delay): budget.recordRetry(); try await Task.sleep(for: delay)
/// case .giveUp(let reason): metrics.giveUps(reason.label).increment()
/// }
/// ```
public struct RetryPolicy: Sendable, Hashable {
    /// Total attempts, the first included (3 = one try plus two retries). Default 3; at least 1.
    public var maxAttempts: Int
    /// Backoff before the first retry (before jitter). Default 100 ms.
    public var baseDelay: Duration
    /// Largest backoff (before jitter). Default 5 s.
    public var maxDelay: Duration
    /// Backoff growth per failed attempt. Default 2.
    public var multiplier: Double
    /// How the jitter sample shapes the backoff. Default `.equal` (see `Backoff`).
    public var jitterStrategy: Backoff.JitterStrategy
    /// The longest `Retry-After` worth waiting for; a longer one gives up at once. Default 30 s.
    public var maxRetryAfter: Duration
    /// HTTP statuses that are retried. Default 429, 500, 502, 503, 504.
    public var retryableStatuses: Set<Int>

    /// The default retryable statuses: 429, 500, 502, 503, 504.
    public static let defaultRetryableStatuses: Set<Int> = [429, 500, 502, 503, 504]

    /// Creates a policy; every argument has the documented default. `maxAttempts` is clamped to at least 1.
    public init(
        maxAttempts: Int = 3,
        baseDelay: Duration = .milliseconds(100),
        maxDelay: Duration = .seconds(5),
        multiplier: Double = 2,
        jitterStrategy: Backoff.JitterStrategy = .equal,
        maxRetryAfter: Duration = .seconds(30),
        retryableStatuses: Set<Int> = RetryPolicy.defaultRetryableStatuses
    ) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.multiplier = multiplier
        self.jitterStrategy = jitterStrategy
        self.maxRetryAfter = maxRetryAfter
        self.retryableStatuses = retryableStatuses
    }

    /// Whether this kind of failure may be retried at all (attempts, deadline and budget aside).
    public func isRetryable(_ failure: RetryableFailure) -> Bool {
        self.nonRetryableReason(failure) == nil
    }

    /// The backoff before the next attempt after `failedAttempts` failures, for a jitter sample in `0..<1`.
    public func backoff(afterFailedAttempts failedAttempts: Int, jitter: Double) -> Duration {
        Backoff.delay(
            afterFailedAttempts: failedAttempts,
            base: self.baseDelay,
            multiplier: self.multiplier,
            cap: self.maxDelay,
            strategy: self.jitterStrategy,
            jitter: jitter
        )
    }

    /// Decides whether to retry after attempt number `attempt` (1 for the first) failed.
    ///
    /// - Parameters:
    ///   - attempt: the 1-based number of the attempt that just failed.
    ///   - failure: how it failed.
    ///   - retryAfter: the upstream's `Retry-After` (or `retry-after-ms`), already parsed, if any.
    ///   - timeLeft: time until the request's deadline.
    ///   - jitter: a random sample in `0..<1` for the backoff.
    ///   - budgetAllows: whether the upstream's `RetryBudget` allows one more retry now.
    /// - Returns: `.retry(after:)` with the wait, or `.giveUp` with a label-safe reason.
    public func decision(
        attempt: Int,
        failure: RetryableFailure,
        retryAfter: Duration?,
        timeLeft: Duration,
        jitter: Double,
        budgetAllows: Bool
    ) -> RetryDecision {
        if let reason = self.nonRetryableReason(failure) {
            return .giveUp(reason)
        }
        guard attempt < self.maxAttempts else {
            return .giveUp(.attemptsExhausted)
        }
        if let retryAfter, retryAfter > self.maxRetryAfter {
            return .giveUp(.retryAfterTooLong)
        }
        let backoff = self.backoff(afterFailedAttempts: attempt, jitter: jitter)
        let delay = max(retryAfter ?? .zero, backoff)
        guard delay < timeLeft else {
            return .giveUp(.deadline)
        }
        guard budgetAllows else {
            return .giveUp(.budgetExhausted)
        }
        return .retry(after: delay)
    }

    private func nonRetryableReason(_ failure: RetryableFailure) -> RetryDecision.GiveUpReason? {
        switch failure {
        case .connectFailed, .timedOutBeforeFirstByte:
            nil
        case .status(let status):
            self.retryableStatuses.contains(status) ? nil : .statusNotRetryable
        case .failedAfterFirstByte:
            .afterFirstByte
        case .other:
            .notRetryable
        }
    }
}
