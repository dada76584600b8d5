/// What to do after a failed upstream attempt.
public enum RetryDecision: Sendable, Hashable {
    /// Wait `after`, then send the next attempt.
    case retry(after: Duration)
    /// Stop and report the failure.
    case giveUp(GiveUpReason)

    /// Why no further attempt is made.
    public enum GiveUpReason: String, Sendable, Hashable, CaseIterable {
        /// The failure kind is never retried (`.other`).
        case notRetryable = "not_retryable"
        /// The status is not in `RetryPolicy.retryableStatuses` (e.g. 400, 401, 404).
        case statusNotRetryable = "status_not_retryable"
        /// Part of the response already reached the client.
        case afterFirstByte = "after_first_byte"
        /// `RetryPolicy.maxAttempts` attempts were made.
        case attemptsExhausted = "attempts_exhausted"
        /// The upstream asked to wait longer than `RetryPolicy.maxRetryAfter`.
        case retryAfterTooLong = "retry_after_too_long"
        /// The wait would reach or pass the request's deadline.
        case deadline = "deadline"
        /// The upstream's retry budget is spent.
        case budgetExhausted = "budget_exhausted"

        /// A metric-label-safe name.
        public var label: String { self.rawValue }
    }

    /// Whether the decision is to retry.
    public var isRetry: Bool {
        if case .retry = self { return true }
        return false
    }
}
