/// The pure core of a circuit breaker: a value type with no locks and no clock.
///
/// Every operation takes `now` and returns what happened; `CircuitBreaker` wraps it in a mutex.
///
/// - Closed: every request is `.allowed`. A failure opens the breaker after
///   `consecutiveFailureThreshold` failures in a row, or when the failure ratio over the sliding
///   window reaches `failureRateThreshold` with at least `minimumRequestsInWindow` results in it.
/// - Open: requests are `.rejected(retryAfter:)` until `cooldown` has passed. The move to
///   half-open is lazy: the first `admit` after the cooldown makes it.
/// - Half-open: at most `halfOpenMaxProbes` unreported probes at a time are `.allowedAsProbe`;
///   the rest are rejected. A probe success frees its permit and counts towards
///   `successesToClose`; reaching it closes the breaker with fresh counters. A probe failure
///   reopens it with a fresh cooldown.
///
/// Probe expiry: a probe that never reports back (its task was cancelled, its result lost) must
/// not wedge the breaker half-open forever, so a probe permit expires `cooldown` after it was
/// granted and another probe is admitted in its place.
///
/// Results of requests admitted while closed that arrive after the breaker left the closed state
/// (`wasProbe: false` while open or half-open) are ignored: they describe the past. Likewise a
/// probe result that arrives while open (after another probe already failed) is ignored.
///
/// ```swift
/// var machine = CircuitBreakerStateMachine(configuration: .init())
/// let now = ContinuousClock.now
/// if machine.admit(now: now).admission.isAllowed { _ = machine.recordFailure(now: now, wasProbe: false) }
/// ```
public struct CircuitBreakerStateMachine: Sendable, Hashable {
    private enum Storage: Sendable, Hashable {
        case closed(consecutiveFailures: Int)
        case open(until: ContinuousClock.Instant)
        case halfOpen(HalfOpen)
    }

    private struct HalfOpen: Sendable, Hashable {
        /// When each outstanding (granted, not yet reported) probe permit was granted, oldest first.
        var outstandingProbes: [ContinuousClock.Instant] = []
        /// Probes admitted in this half-open period.
        var probesAdmitted: Int = 0
        /// Probe successes in this half-open period.
        var successes: Int = 0
    }

    /// The configuration this machine was created with.
    public let configuration: CircuitBreakerConfiguration
    private var storage: Storage
    private var window: SlidingWindowCounter  // first: successes, second: failures

    /// Creates a closed breaker.
    public init(configuration: CircuitBreakerConfiguration) {
        self.configuration = configuration
        self.storage = .closed(consecutiveFailures: 0)
        self.window = SlidingWindowCounter(window: configuration.window, bucketCount: configuration.windowBuckets)
    }

    /// The stored state. An open breaker whose cooldown has passed still reads `.open` until the
    /// next `admit`; use `state(at:)` to see the state the next request would find.
    public var state: CircuitBreakerState {
        switch self.storage {
        case .closed: .closed
        case .open: .open
        case .halfOpen: .halfOpen
        }
    }

    /// The state a request arriving at `now` would find: `.halfOpen` once an open breaker's cooldown has passed.
    public func state(at now: ContinuousClock.Instant) -> CircuitBreakerState {
        if case .open(let until) = self.storage, now >= until {
            return .halfOpen
        }
        return self.state
    }

    /// Failures in a row while closed (0 in the other states).
    public var consecutiveFailures: Int {
        if case .closed(let failures) = self.storage { return failures }
        return 0
    }

    /// Probes admitted in the current half-open period (0 in the other states).
    public var probesAdmitted: Int {
        if case .halfOpen(let halfOpen) = self.storage { return halfOpen.probesAdmitted }
        return 0
    }

    /// Successes and failures counted in the sliding window at `now` (only kept while closed).
    public func windowCounts(at now: ContinuousClock.Instant) -> (successes: Int, failures: Int) {
        let totals = self.window.totals(now: now)
        return (totals.first, totals.second)
    }

    /// Decides whether a request may be sent at `now`.
    ///
    /// Returns the admission and, when the cooldown has just ended, the open -> half-open transition.
    public mutating func admit(
        now: ContinuousClock.Instant
    ) -> (admission: CircuitBreakerAdmission, transition: CircuitBreakerTransition?) {
        switch self.storage {
        case .closed:
            return (.allowed, nil)

        case .open(let until):
            guard now >= until else {
                return (.rejected(retryAfter: now.duration(to: until)), nil)
            }
            var halfOpen = HalfOpen()
            let admission = self.admitProbe(&halfOpen, now: now)
            self.storage = .halfOpen(halfOpen)
            return (admission, CircuitBreakerTransition(from: .open, to: .halfOpen, reason: .cooldownElapsed))

        case .halfOpen(var halfOpen):
            let admission = self.admitProbe(&halfOpen, now: now)
            self.storage = .halfOpen(halfOpen)
            return (admission, nil)
        }
    }

    /// Records a successful result; returns the transition it caused, if any.
    public mutating func recordSuccess(now: ContinuousClock.Instant, wasProbe: Bool) -> CircuitBreakerTransition? {
        switch self.storage {
        case .closed:
            self.storage = .closed(consecutiveFailures: 0)
            self.window.add(first: 1, now: now)
            return nil

        case .open:
            return nil

        case .halfOpen(var halfOpen):
            guard wasProbe else { return nil }
            if !halfOpen.outstandingProbes.isEmpty {
                halfOpen.outstandingProbes.removeFirst()
            }
            halfOpen.successes += 1
            guard halfOpen.successes >= self.configuration.successesToClose else {
                self.storage = .halfOpen(halfOpen)
                return nil
            }
            self.storage = .closed(consecutiveFailures: 0)
            self.window.reset()
            return CircuitBreakerTransition(from: .halfOpen, to: .closed, reason: .probesSucceeded)
        }
    }

    /// Records a failed result; returns the transition it caused, if any.
    public mutating func recordFailure(now: ContinuousClock.Instant, wasProbe: Bool) -> CircuitBreakerTransition? {
        switch self.storage {
        case .closed(let consecutiveFailures):
            let failures = consecutiveFailures + 1
            self.window.add(second: 1, now: now)
            if failures >= self.configuration.consecutiveFailureThreshold {
                self.open(now: now)
                return CircuitBreakerTransition(from: .closed, to: .open, reason: .consecutiveFailures)
            }
            if self.failureRateExceeded(now: now) {
                self.open(now: now)
                return CircuitBreakerTransition(from: .closed, to: .open, reason: .failureRate)
            }
            self.storage = .closed(consecutiveFailures: failures)
            return nil

        case .open:
            return nil

        case .halfOpen:
            guard wasProbe else { return nil }
            self.open(now: now)
            return CircuitBreakerTransition(from: .halfOpen, to: .open, reason: .probeFailed)
        }
    }

    /// Records that an admitted request ended without saying anything about the upstream's health
    /// (the client cancelled, the upstream answered 4xx): nothing is counted, but a probe's permit
    /// is freed at once instead of expiring after the cooldown.
    public mutating func recordIgnored(now: ContinuousClock.Instant, wasProbe: Bool) {
        guard wasProbe, case .halfOpen(var halfOpen) = self.storage, !halfOpen.outstandingProbes.isEmpty else {
            return
        }
        halfOpen.outstandingProbes.removeFirst()
        self.storage = .halfOpen(halfOpen)
    }

    private func admitProbe(_ halfOpen: inout HalfOpen, now: ContinuousClock.Instant) -> CircuitBreakerAdmission {
        let cooldown = self.configuration.cooldown
        halfOpen.outstandingProbes.removeAll { granted in granted.advanced(by: cooldown) <= now }
        guard halfOpen.outstandingProbes.count < self.configuration.halfOpenMaxProbes else {
            // Full: the earliest moment a permit frees up without a report is the oldest expiry.
            let oldest = halfOpen.outstandingProbes.first ?? now
            return .rejected(retryAfter: max(.zero, now.duration(to: oldest.advanced(by: cooldown))))
        }
        halfOpen.outstandingProbes.append(now)
        halfOpen.probesAdmitted += 1
        return .allowedAsProbe
    }

    private func failureRateExceeded(now: ContinuousClock.Instant) -> Bool {
        let totals = self.window.totals(now: now)
        let total = totals.first + totals.second
        guard total >= self.configuration.minimumRequestsInWindow, total > 0 else { return false }
        return Double(totals.second) / Double(total) >= self.configuration.failureRateThreshold
    }

    private mutating func open(now: ContinuousClock.Instant) {
        self.storage = .open(until: now.advanced(by: self.configuration.cooldown))
        self.window.reset()
    }
}
