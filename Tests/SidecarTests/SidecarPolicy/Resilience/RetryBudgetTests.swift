import Testing

@testable import SidecarCore
@testable import SidecarEmbedding
@testable import SidecarPolicy

@Suite struct RetryBudgetTests {
    let t0 = ContinuousClock.now

    func at(_ offset: Duration) -> ContinuousClock.Instant { self.t0.advanced(by: offset) }

    @Test func floorAllowsMinRetriesPerSecondTimesWindowWithoutTraffic() {
        var ledger = RetryBudgetLedger(configuration: .init())  // 3/s over 10 s = 30
        for _ in 0..<30 {
            #expect(ledger.tryWithdraw(now: self.t0) == true)
        }
        #expect(ledger.tryWithdraw(now: self.t0) == false)
        #expect(!ledger.canRetry(now: self.t0))
    }

    @Test func ratioAddsRetriesPerRequest() {
        var ledger = RetryBudgetLedger(configuration: .init(ratio: 0.2, minRetriesPerSecond: 0))
        for _ in 0..<100 { ledger.recordRequest(now: self.t0) }
        for _ in 0..<20 {
            #expect(ledger.tryWithdraw(now: self.t0) == true)
        }
        #expect(!ledger.canRetry(now: self.t0))
        #expect(ledger.counts(at: self.t0) == (100, 20, 20))
        // Five more requests earn one more retry.
        for _ in 0..<5 { ledger.recordRequest(now: self.t0) }
        #expect(ledger.tryWithdraw(now: self.t0) == true)
        #expect(!ledger.canRetry(now: self.t0))
    }

    @Test func floorAndRatioAdd() {
        var ledger = RetryBudgetLedger(configuration: .init())
        for _ in 0..<1_000 { ledger.recordRequest(now: self.t0) }
        #expect(ledger.counts(at: self.t0).allowance == 230)
        var granted = 0
        while ledger.tryWithdraw(now: self.t0) { granted += 1 }
        #expect(granted == 230)
    }

    @Test func canRetryDoesNotSpend() {
        let ledger = RetryBudgetLedger(configuration: .init(ratio: 0, minRetriesPerSecond: 0.1))  // 1 per window
        #expect(ledger.canRetry(now: self.t0))
        #expect(ledger.canRetry(now: self.t0))
    }

    @Test func spentRetriesExpireWithTheWindow() {
        var ledger = RetryBudgetLedger(configuration: .init(ratio: 0, minRetriesPerSecond: 0.1))
        #expect(ledger.tryWithdraw(now: self.t0) == true)
        #expect(!ledger.canRetry(now: self.at(.seconds(9))))
        #expect(ledger.canRetry(now: self.at(.seconds(10))))
    }

    @Test func earnedRetriesExpireWithTheirRequests() {
        var ledger = RetryBudgetLedger(configuration: .init(ratio: 1, minRetriesPerSecond: 0))
        ledger.recordRequest(now: self.t0)
        #expect(ledger.canRetry(now: self.at(.seconds(9))))
        #expect(!ledger.canRetry(now: self.at(.seconds(10))))
    }

    @Test func zeroBudgetNeverAllowsRetries() {
        var ledger = RetryBudgetLedger(configuration: .init(ratio: 0, minRetriesPerSecond: 0))
        for _ in 0..<1_000 { ledger.recordRequest(now: self.t0) }
        #expect(ledger.tryWithdraw(now: self.t0) == false)
    }

    @Test func configurationClampsNonsense() {
        let configuration = RetryBudget.Configuration(
            ratio: -1,
            minRetriesPerSecond: .nan,
            window: .zero,
            windowBuckets: 0
        )
        #expect(configuration.ratio == 0)
        #expect(configuration.minRetriesPerSecond == 0)
        #expect(configuration.window == .nanoseconds(1))
        #expect(configuration.windowBuckets == 1)
    }

    @Test func shellUsesTheInjectedClock() {
        let now = FakeNow()
        let budget = RetryBudget(
            upstreamName: "openai",
            configuration: .init(ratio: 0.5, minRetriesPerSecond: 0),
            now: now.closure
        )
        #expect(!budget.canRetry())
        budget.recordRequest()
        budget.recordRequest()
        #expect(budget.canRetry())
        budget.recordRetry()
        #expect(!budget.tryWithdraw())
        now.advance(by: .seconds(10))
        budget.recordRequest()
        budget.recordRequest()
        #expect(budget.tryWithdraw())
        #expect(!budget.canRetry())
    }
}
