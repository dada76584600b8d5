import Synchronization

/// A per-upstream retry budget: a thread-safe shell around `RetryBudgetLedger`.
///
/// It caps retries at a fraction of the traffic so that retries cannot multiply the load on an
/// upstream that is already failing (a retry storm). Call `recordRequest()` once per original
/// request and, when the retry policy says retry, `recordRetry()` (or use `tryWithdraw()` to check
/// and record in one step).
///
/// ```swift
/// let budget = RetryBudget()                 // 20 % of requests + 3 retries/s, over 10 s
/// budget.recordRequest()
/// // after a failed attempt:
/// let decision = policy.decision(..., budgetAllows: budget.canRetry())
/// if decision.isRetry { budget.recordRetry() }
/// ```
public final class RetryBudget: Sendable {
    /// Tuning of a retry budget.
    public struct Configuration: Sendable, Hashable {
        /// Retries allowed per original request in the window. Default 0.2.
        public var ratio: Double
        /// Retries always allowed per second of window, whatever the traffic. Default 3.
        public var minRetriesPerSecond: Double
        /// Length of the sliding window. Default 10 s.
        public var window: Duration
        /// Buckets the window is counted in. Default 10.
        public var windowBuckets: Int

        /// Creates a configuration; negative or NaN rates count as 0, the window is at least 1 ns.
        public init(
            ratio: Double = 0.2,
            minRetriesPerSecond: Double = 3,
            window: Duration = .seconds(10),
            windowBuckets: Int = 10
        ) {
            self.ratio = ratio.isNaN ? 0 : max(0, ratio)
            self.minRetriesPerSecond = minRetriesPerSecond.isNaN ? 0 : max(0, minRetriesPerSecond)
            self.window = max(.nanoseconds(1), window)
            self.windowBuckets = max(1, windowBuckets)
        }
    }

    /// The upstream this budget belongs to, for logs and metric labels.
    public let upstreamName: String
    private let ledger: Mutex<RetryBudgetLedger>
    private let now: @Sendable () -> ContinuousClock.Instant

    /// Creates an empty budget; `now` is the time source (tests inject a manual one).
    public init(
        upstreamName: String = "",
        configuration: Configuration = Configuration(),
        now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
    ) {
        self.upstreamName = upstreamName
        self.ledger = Mutex(RetryBudgetLedger(configuration: configuration))
        self.now = now
    }

    /// Counts one original request.
    public func recordRequest() {
        let now = self.now
        self.ledger.withLock { $0.recordRequest(now: now()) }
    }

    /// Counts one retry being sent.
    public func recordRetry() {
        let now = self.now
        self.ledger.withLock { $0.recordRetry(now: now()) }
    }

    /// Whether one more retry fits now (nothing is recorded).
    public func canRetry() -> Bool {
        let now = self.now
        return self.ledger.withLock { $0.canRetry(now: now()) }
    }

    /// Records a retry if one fits, atomically; returns whether it did.
    public func tryWithdraw() -> Bool {
        let now = self.now
        return self.ledger.withLock { $0.tryWithdraw(now: now()) }
    }
}
