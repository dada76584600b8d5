import Testing

@testable import SidecarCore
@testable import SidecarPolicy

@Suite struct SlidingWindowCounterTests {
    let t0 = ContinuousClock.now

    func at(_ offset: Duration) -> ContinuousClock.Instant { self.t0.advanced(by: offset) }

    @Test func emptyCounterHasZeroTotals() {
        let counter = SlidingWindowCounter(window: .seconds(10), bucketCount: 10)
        #expect(counter.totals(now: self.t0) == .init(first: 0, second: 0))
    }

    @Test func sumsEventsInsideTheWindow() {
        var counter = SlidingWindowCounter(window: .seconds(10), bucketCount: 10)
        counter.add(first: 2, now: self.t0)
        counter.add(second: 1, now: self.at(.milliseconds(1_500)))
        counter.add(first: 1, second: 1, now: self.at(.milliseconds(9_999)))
        #expect(counter.totals(now: self.at(.milliseconds(9_999))) == .init(first: 3, second: 2))
    }

    @Test func expiresOneBucketAtATime() {
        var counter = SlidingWindowCounter(window: .seconds(10), bucketCount: 10)
        counter.add(first: 1, now: self.t0)  // bucket 0
        counter.add(first: 10, now: self.at(.seconds(1)))  // bucket 1
        #expect(counter.totals(now: self.at(.milliseconds(9_999))).first == 11)
        #expect(counter.totals(now: self.at(.seconds(10))).first == 10)
        #expect(counter.totals(now: self.at(.seconds(11))).first == 0)
    }

    @Test func reusesRingSlotsAfterAFullTurn() {
        var counter = SlidingWindowCounter(window: .seconds(10), bucketCount: 10)
        counter.add(first: 5, now: self.t0)
        counter.add(first: 1, now: self.at(.seconds(10)))  // same slot, next turn: old count dropped
        #expect(counter.totals(now: self.at(.seconds(10))).first == 1)
    }

    @Test func dropsLateEventsWhoseSlotHoldsANewerBucket() {
        var counter = SlidingWindowCounter(window: .seconds(10), bucketCount: 10)
        counter.add(first: 1, now: self.t0)
        counter.add(first: 1, now: self.at(.seconds(15)))  // bucket 15, slot 5
        counter.add(first: 7, now: self.at(.seconds(5)))  // late report for bucket 5, slot 5: dropped
        #expect(counter.totals(now: self.at(.seconds(15))).first == 1)
        #expect(counter.totals(now: self.at(.seconds(5))).first == 1)
    }

    @Test func instantsBeforeTheFirstEventCountInBucketZero() {
        var counter = SlidingWindowCounter(window: .seconds(10), bucketCount: 10)
        counter.add(first: 1, now: self.at(.seconds(5)))
        counter.add(first: 1, now: self.t0)
        #expect(counter.totals(now: self.at(.seconds(5))).first == 2)
    }

    @Test func resetForgetsEverything() {
        var counter = SlidingWindowCounter(window: .seconds(10), bucketCount: 10)
        counter.add(first: 3, second: 4, now: self.t0)
        counter.reset()
        #expect(counter.totals(now: self.t0) == .init(first: 0, second: 0))
    }

    @Test func toleratesDegenerateSizes() {
        var counter = SlidingWindowCounter(window: .zero, bucketCount: 0)
        counter.add(first: 1, now: self.t0)
        #expect(counter.totals(now: self.t0).first == 1)
        #expect(counter.totals(now: self.at(.nanoseconds(1))).first == 0)
    }
}
