import Testing

@testable import SidecarCore
@testable import SidecarPolicy

@Suite struct BackoffTests {
    func delay(_ attempts: Int, strategy: Backoff.JitterStrategy = .none, jitter: Double = 0) -> Duration {
        Backoff.delay(
            afterFailedAttempts: attempts,
            base: .milliseconds(100),
            cap: .seconds(5),
            strategy: strategy,
            jitter: jitter
        )
    }

    @Test func growsExponentiallyFromBase() {
        let delays = (1...6).map { self.delay($0) }
        #expect(
            delays == [
                .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1_600),
                .milliseconds(3_200),
            ]
        )
    }

    @Test func isCappedAtMaximum() {
        #expect(self.delay(7) == .seconds(5))
        #expect(self.delay(30) == .seconds(5))
    }

    @Test func doesNotOverflowAtAttemptOneHundredOrBeyond() {
        #expect(self.delay(100) == .seconds(5))
        #expect(self.delay(10_000, strategy: .equal, jitter: 0.999) <= .seconds(5))
        #expect(self.delay(Int.max) == .seconds(5))
        let uncapped = Backoff.delay(afterFailedAttempts: 100, base: .seconds(1), cap: .seconds(Int64.max), jitter: 0.5)
        #expect(uncapped > .zero)
    }

    @Test func attemptsBelowOneCountAsOne() {
        #expect(self.delay(0) == .milliseconds(100))
        #expect(self.delay(-5) == .milliseconds(100))
    }

    @Test func equalJitterStaysInUpperHalf() {
        #expect(self.delay(3, strategy: .equal, jitter: 0) == .milliseconds(200))
        #expect(self.delay(3, strategy: .equal, jitter: 0.5) == .milliseconds(300))
        let top = self.delay(3, strategy: .equal, jitter: 0.999_999)
        #expect(top < .milliseconds(400))
        #expect(top > .milliseconds(399))
    }

    @Test func fullJitterSpansZeroToDelay() {
        #expect(self.delay(3, strategy: .full, jitter: 0) == .zero)
        #expect(self.delay(3, strategy: .full, jitter: 0.25) == .milliseconds(100))
        #expect(self.delay(3, strategy: .full, jitter: 0.999_999) < .milliseconds(400))
    }

    @Test func jitterOutsideUnitRangeIsClamped() {
        #expect(self.delay(3, strategy: .full, jitter: -1) == .zero)
        #expect(self.delay(3, strategy: .full, jitter: .nan) == .zero)
        #expect(self.delay(3, strategy: .full, jitter: 7) <= .milliseconds(400))
        #expect(self.delay(3, strategy: .equal, jitter: .infinity) <= .milliseconds(400))
    }

    @Test func randomJitterAlwaysWithinBounds() {
        var generator = SplitMix64(seed: 42)
        for attempt in 1...20 {
            let ceiling = self.delay(attempt)
            for _ in 0..<50 {
                let value = Backoff.delay(
                    afterFailedAttempts: attempt,
                    base: .milliseconds(100),
                    cap: .seconds(5),
                    using: &generator
                )
                #expect(value >= ceiling / 2)
                #expect(value <= ceiling)
            }
        }
    }

    @Test func nonsenseInputsGiveZeroOrCap() {
        #expect(Backoff.delay(afterFailedAttempts: 3, base: .zero, cap: .seconds(5), jitter: 0.5) == .zero)
        #expect(Backoff.delay(afterFailedAttempts: 3, base: .seconds(-1), cap: .seconds(5), jitter: 0.5) == .zero)
        #expect(Backoff.delay(afterFailedAttempts: 3, base: .seconds(1), cap: .seconds(-5), jitter: 0.5) == .zero)
        let flat = Backoff.delay(
            afterFailedAttempts: 9,
            base: .seconds(1),
            multiplier: .nan,
            cap: .seconds(5),
            strategy: .none,
            jitter: 0
        )
        #expect(flat == .seconds(1))
    }
}

/// A small deterministic generator for tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { self.state = seed }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
