import Foundation

/// Exponential backoff with jitter, as a pure function.
///
/// The un-jittered delay after the `n`th failed attempt is `base * multiplier^(n - 1)`, capped at
/// `cap`. The cap is applied to the `Double` before conversion to an integer duration (as in
/// AsyncHTTPClient's connection backoff), so even attempt 10 000 cannot overflow or trap.
///
/// With the defaults (100 ms base, x2, 5 s cap) the un-jittered delays are
/// 100 ms, 200 ms, 400 ms, 800 ms, 1.6 s, 3.2 s, 5 s, 5 s, ...
///
/// Jitter spreads retries of many clients that failed together (see "Exponential Backoff And
/// Jitter", AWS Architecture Blog). The default is **equal jitter**: half the delay is kept and
/// the other half is random, so a retry never comes sooner than half the exponential delay (an
/// overloaded upstream is not hit again immediately) while clients still spread out. `.full`
/// (uniform in `0...delay`, least total work) and `.none` (deterministic) are available.
///
/// The randomness is an argument (`jitter` in `0..<1`) so callers and tests decide where it comes from.
///
/// ```swift
/// let delay = Backoff.delay(afterFailedAttempts: 2, base: .milliseconds(100), cap: .seconds(5),
///                           jitter: Double.random(in: 0..<1))  // 100 ms ... 200 ms
/// ```
public enum Backoff {
    /// How the random sample shapes the delay `d` (the capped exponential value).
    public enum JitterStrategy: String, Sendable, Hashable, CaseIterable {
        /// `d` exactly; the sample is ignored.
        case none
        /// `d * jitter`: uniform between 0 and `d`.
        case full
        /// `d / 2 + d / 2 * jitter`: uniform between `d / 2` and `d`.
        case equal
    }

    /// The delay before the next attempt, after `failedAttempts` failed attempts in a row.
    ///
    /// - Parameters:
    ///   - failedAttempts: failed attempts so far, 1 for the first retry; values below 1 count as 1.
    ///   - base: the delay after the first failure, before jitter.
    ///   - multiplier: growth per failed attempt; values below 1 (and NaN) count as 1.
    ///   - cap: the largest delay, before jitter.
    ///   - strategy: how `jitter` is applied (default `.equal`).
    ///   - jitter: a random sample in `0..<1`; clamped into that range (NaN counts as 0).
    /// - Returns: a non-negative delay, never above `cap`.
    public static func delay(
        afterFailedAttempts failedAttempts: Int,
        base: Duration,
        multiplier: Double = 2,
        cap: Duration,
        strategy: JitterStrategy = .equal,
        jitter: Double
    ) -> Duration {
        let exponent = Double(max(1, failedAttempts) - 1)
        let growth = multiplier.isNaN ? 1 : max(1, multiplier)
        let capNanoseconds = max(0, cap.nanosecondsAsDouble)
        let baseNanoseconds = max(0, base.nanosecondsAsDouble)
        // pow may return +infinity for large attempts; min() with the cap keeps the value finite
        // before any integer conversion happens.
        let exponential = min(baseNanoseconds * pow(growth, exponent), capNanoseconds)
        let sample = jitter.isNaN ? 0 : min(max(jitter, 0), 1.0.nextDown)
        let jittered: Double
        switch strategy {
        case .none: jittered = exponential
        case .full: jittered = exponential * sample
        case .equal: jittered = exponential / 2 + exponential / 2 * sample
        }
        return Duration.clampedNanoseconds(jittered)
    }

    /// The same as `delay(afterFailedAttempts:base:multiplier:cap:strategy:jitter:)`, drawing the
    /// sample from `generator`.
    public static func delay(
        afterFailedAttempts failedAttempts: Int,
        base: Duration,
        multiplier: Double = 2,
        cap: Duration,
        strategy: JitterStrategy = .equal,
        using generator: inout some RandomNumberGenerator
    ) -> Duration {
        self.delay(
            afterFailedAttempts: failedAttempts,
            base: base,
            multiplier: multiplier,
            cap: cap,
            strategy: strategy,
            jitter: Double.random(in: 0..<1, using: &generator)
        )
    }
}
