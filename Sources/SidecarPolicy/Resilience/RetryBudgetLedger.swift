/// The pure core of `RetryBudget`: counts requests and retries over a sliding window.
///
/// A retry is allowed while `retries + 1 <= ratio * requests + minRetriesPerSecond * window`
/// (all counted over the window), as in Finagle's retry budget: retries may add at most `ratio`
/// extra load, and the `minRetriesPerSecond` reserve keeps low-traffic upstreams retryable.
/// Value type, no locks; every call takes `now`.
public struct RetryBudgetLedger: Sendable, Hashable {
    /// The configuration this ledger was created with.
    public let configuration: RetryBudget.Configuration
    private var window: SlidingWindowCounter  // first: requests, second: retries

    /// Creates an empty ledger.
    public init(configuration: RetryBudget.Configuration) {
        self.configuration = configuration
        self.window = SlidingWindowCounter(window: configuration.window, bucketCount: configuration.windowBuckets)
    }

    /// Counts one original request (not a retry).
    public mutating func recordRequest(now: ContinuousClock.Instant) {
        self.window.add(first: 1, now: now)
    }

    /// Counts one retry that is being sent.
    public mutating func recordRetry(now: ContinuousClock.Instant) {
        self.window.add(second: 1, now: now)
    }

    /// Whether one more retry fits in the budget at `now` (nothing is recorded).
    public func canRetry(now: ContinuousClock.Instant) -> Bool {
        let totals = self.window.totals(now: now)
        return Double(totals.second + 1) <= self.allowance(requests: totals.first)
    }

    /// Records a retry if one fits, atomically; returns whether it did.
    public mutating func tryWithdraw(now: ContinuousClock.Instant) -> Bool {
        guard self.canRetry(now: now) else { return false }
        self.recordRetry(now: now)
        return true
    }

    /// Requests and retries counted in the window at `now`, and the retries the budget allows.
    public func counts(at now: ContinuousClock.Instant) -> (requests: Int, retries: Int, allowance: Double) {
        let totals = self.window.totals(now: now)
        return (totals.first, totals.second, self.allowance(requests: totals.first))
    }

    private func allowance(requests: Int) -> Double {
        self.configuration.ratio * Double(requests) + self.configuration.minRetriesPerSecond
            * self.configuration.window.secondsAsDouble
    }
}
