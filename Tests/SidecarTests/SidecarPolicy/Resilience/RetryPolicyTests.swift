import Testing

@testable import SidecarCore
@testable import SidecarPolicy

@Suite struct RetryPolicyTests {
    let policy = RetryPolicy()

    func decide(
        attempt: Int = 1,
        _ failure: RetryableFailure,
        retryAfter: Duration? = nil,
        timeLeft: Duration = .seconds(60),
        jitter: Double = 0,
        budgetAllows: Bool = true
    ) -> RetryDecision {
        self.policy.decision(
            attempt: attempt,
            failure: failure,
            retryAfter: retryAfter,
            timeLeft: timeLeft,
            jitter: jitter,
            budgetAllows: budgetAllows
        )
    }

    @Test func hasDocumentedDefaults() {
        #expect(self.policy.maxAttempts == 3)
        #expect(self.policy.baseDelay == .milliseconds(100))
        #expect(self.policy.maxDelay == .seconds(5))
        #expect(self.policy.maxRetryAfter == .seconds(30))
        #expect(self.policy.retryableStatuses == [429, 500, 502, 503, 504])
        #expect(self.policy.jitterStrategy == .equal)
    }

    @Test func retriesConnectFailuresAndTimeoutsBeforeFirstByte() {
        #expect(self.decide(.connectFailed) == .retry(after: .milliseconds(50)))
        #expect(self.decide(.timedOutBeforeFirstByte) == .retry(after: .milliseconds(50)))
    }

    @Test(arguments: [429, 500, 502, 503, 504])
    func retriesRetryableStatuses(status: Int) {
        #expect(self.decide(.status(status)).isRetry)
    }

    @Test(arguments: [400, 401, 403, 404, 408, 413, 422, 501, 200])
    func neverRetriesOtherStatuses(status: Int) {
        #expect(self.decide(.status(status)) == .giveUp(.statusNotRetryable))
    }

    @Test func neverRetriesAfterFirstByte() {
        #expect(self.decide(.failedAfterFirstByte) == .giveUp(.afterFirstByte))
        #expect(self.decide(.failedAfterFirstByte, budgetAllows: true) == .giveUp(.afterFirstByte))
    }

    @Test func neverRetriesOtherFailures() {
        #expect(self.decide(.other) == .giveUp(.notRetryable))
    }

    @Test func stopsAtMaxAttemptsIncludingTheFirst() {
        #expect(self.decide(attempt: 1, .status(503)).isRetry)
        #expect(self.decide(attempt: 2, .status(503)).isRetry)
        #expect(self.decide(attempt: 3, .status(503)) == .giveUp(.attemptsExhausted))
        let single = RetryPolicy(maxAttempts: 1)
        let decision = single.decision(
            attempt: 1,
            failure: .connectFailed,
            retryAfter: nil,
            timeLeft: .seconds(9),
            jitter: 0,
            budgetAllows: true
        )
        #expect(decision == .giveUp(.attemptsExhausted))
    }

    @Test func backoffGrowsWithAttempts() {
        #expect(self.decide(attempt: 1, .status(500), jitter: 0.5) == .retry(after: .milliseconds(75)))
        #expect(self.decide(attempt: 2, .status(500), jitter: 0.5) == .retry(after: .milliseconds(150)))
    }

    @Test func honoursRetryAfterWhenLongerThanBackoff() {
        #expect(self.decide(.status(429), retryAfter: .seconds(2)) == .retry(after: .seconds(2)))
    }

    @Test func keepsBackoffWhenRetryAfterIsShorter() {
        #expect(self.decide(.status(429), retryAfter: .zero) == .retry(after: .milliseconds(50)))
    }

    @Test func givesUpWhenRetryAfterExceedsMaximum() {
        #expect(self.decide(.status(429), retryAfter: .seconds(30)).isRetry)
        #expect(self.decide(.status(429), retryAfter: .seconds(31)) == .giveUp(.retryAfterTooLong))
    }

    @Test func givesUpWhenWaitWouldReachTheDeadline() {
        #expect(self.decide(.status(503), retryAfter: .seconds(5), timeLeft: .seconds(5)) == .giveUp(.deadline))
        #expect(self.decide(.status(503), retryAfter: .seconds(5), timeLeft: .seconds(6)).isRetry)
        #expect(self.decide(.connectFailed, timeLeft: .milliseconds(50)) == .giveUp(.deadline))
        #expect(self.decide(.connectFailed, timeLeft: .zero) == .giveUp(.deadline))
        #expect(self.decide(.connectFailed, timeLeft: .seconds(-1)) == .giveUp(.deadline))
    }

    @Test func givesUpWhenBudgetIsSpent() {
        #expect(self.decide(.status(503), budgetAllows: false) == .giveUp(.budgetExhausted))
    }

    @Test func nonRetryableFailureWinsOverOtherReasons() {
        let decision = self.decide(
            attempt: 9,
            .status(400),
            retryAfter: .seconds(99),
            timeLeft: .zero,
            budgetAllows: false
        )
        #expect(decision == .giveUp(.statusNotRetryable))
    }

    @Test func customStatusesAreHonoured() {
        let policy = RetryPolicy(retryableStatuses: [503])
        #expect(!policy.isRetryable(.status(429)))
        #expect(policy.isRetryable(.status(503)))
        #expect(policy.isRetryable(.connectFailed))
        #expect(!policy.isRetryable(.failedAfterFirstByte))
    }

    @Test func reasonsAndFailuresHaveLabelSafeNames() {
        let labels = RetryDecision.GiveUpReason.allCases.map(\.label)
        #expect(
            labels == [
                "not_retryable", "status_not_retryable", "after_first_byte", "attempts_exhausted",
                "retry_after_too_long", "deadline", "budget_exhausted",
            ]
        )
        #expect(RetryableFailure.status(503).label == "status_503")
        #expect(RetryableFailure.status(-7).label == "status_invalid")
        #expect(RetryableFailure.timedOutBeforeFirstByte.label == "timeout")
        for label in labels + [RetryableFailure.connectFailed.label] {
            #expect(label.allSatisfy { $0.isLowercase || $0 == "_" || $0.isNumber })
        }
    }
}
