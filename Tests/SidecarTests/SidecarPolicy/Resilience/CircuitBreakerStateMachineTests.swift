import Testing

@testable import SidecarCore
@testable import SidecarPolicy

@Suite struct CircuitBreakerStateMachineTests {
    let t0 = ContinuousClock.now

    func at(_ offset: Duration) -> ContinuousClock.Instant { self.t0.advanced(by: offset) }

    func machine(_ configuration: CircuitBreakerConfiguration = .init()) -> CircuitBreakerStateMachine {
        CircuitBreakerStateMachine(configuration: configuration)
    }

    /// Drives a closed machine to open with consecutive failures at `t0`.
    func openedMachine(_ configuration: CircuitBreakerConfiguration = .init()) -> CircuitBreakerStateMachine {
        var machine = self.machine(configuration)
        for _ in 0..<configuration.consecutiveFailureThreshold {
            _ = machine.recordFailure(now: self.t0, wasProbe: false)
        }
        return machine
    }

    @Test func startsClosedAndAllowsRequests() {
        var machine = self.machine()
        #expect(machine.state == .closed)
        let result = machine.admit(now: self.t0)
        #expect(result.admission == .allowed)
        #expect(result.transition == nil)
    }

    @Test func opensAfterFiveConsecutiveFailures() {
        var machine = self.machine()
        for _ in 0..<4 {
            #expect(machine.recordFailure(now: self.t0, wasProbe: false) == nil)
        }
        #expect(machine.state == .closed)
        #expect(machine.consecutiveFailures == 4)
        let transition = machine.recordFailure(now: self.t0, wasProbe: false)
        #expect(transition == CircuitBreakerTransition(from: .closed, to: .open, reason: .consecutiveFailures))
        #expect(machine.state == .open)
    }

    @Test func successResetsConsecutiveFailures() {
        var machine = self.machine()
        for _ in 0..<4 { _ = machine.recordFailure(now: self.t0, wasProbe: false) }
        _ = machine.recordSuccess(now: self.t0, wasProbe: false)
        #expect(machine.consecutiveFailures == 0)
        for _ in 0..<4 {
            #expect(machine.recordFailure(now: self.t0, wasProbe: false) == nil)
        }
        #expect(machine.state == .closed)
    }

    @Test func rejectsWhileOpenWithTimeLeftInCooldown() {
        var machine = self.openedMachine()
        let result = machine.admit(now: self.at(.seconds(4)))
        #expect(result.admission == .rejected(retryAfter: .seconds(6)))
        #expect(result.transition == nil)
        #expect(machine.state == .open)
    }

    @Test func movesToHalfOpenLazilyOnFirstAdmitAfterCooldown() {
        var machine = self.openedMachine()
        #expect(machine.state(at: self.at(.seconds(10))) == .halfOpen)
        #expect(machine.state == .open)  // nothing happens until a request arrives
        let result = machine.admit(now: self.at(.seconds(10)))
        #expect(result.admission == .allowedAsProbe)
        #expect(result.transition == CircuitBreakerTransition(from: .open, to: .halfOpen, reason: .cooldownElapsed))
        #expect(machine.state == .halfOpen)
        #expect(machine.probesAdmitted == 1)
    }

    @Test func halfOpenAdmitsOnlyOneProbeByDefault() {
        var machine = self.openedMachine()
        #expect(machine.admit(now: self.at(.seconds(10))).admission == .allowedAsProbe)
        let second = machine.admit(now: self.at(.seconds(11)))
        // The permit taken at 10 s expires at 20 s.
        #expect(second.admission == .rejected(retryAfter: .seconds(9)))
        #expect(machine.probesAdmitted == 1)
    }

    @Test func halfOpenAdmitsUpToConfiguredProbes() {
        var machine = self.openedMachine(.init(halfOpenMaxProbes: 3))
        for _ in 0..<3 {
            #expect(machine.admit(now: self.at(.seconds(10))).admission == .allowedAsProbe)
        }
        #expect(!machine.admit(now: self.at(.seconds(10))).admission.isAllowed)
        #expect(machine.probesAdmitted == 3)
    }

    @Test func probeSuccessCloses() {
        var machine = self.openedMachine()
        _ = machine.admit(now: self.at(.seconds(10)))
        let transition = machine.recordSuccess(now: self.at(.seconds(11)), wasProbe: true)
        #expect(transition == CircuitBreakerTransition(from: .halfOpen, to: .closed, reason: .probesSucceeded))
        #expect(machine.state == .closed)
        #expect(machine.admit(now: self.at(.seconds(11))).admission == .allowed)
    }

    @Test func closingResetsCounters() {
        var machine = self.openedMachine()
        _ = machine.admit(now: self.at(.seconds(10)))
        _ = machine.recordSuccess(now: self.at(.seconds(10)), wasProbe: true)
        #expect(machine.consecutiveFailures == 0)
        #expect(machine.windowCounts(at: self.at(.seconds(10))) == (0, 0))
        // A fresh run of four failures does not open it again.
        for _ in 0..<4 {
            #expect(machine.recordFailure(now: self.at(.seconds(10)), wasProbe: false) == nil)
        }
    }

    @Test func needsConfiguredSuccessesToClose() {
        var machine = self.openedMachine(.init(successesToClose: 3))
        for second in 10..<12 {
            #expect(machine.admit(now: self.at(.seconds(second))).admission == .allowedAsProbe)
            #expect(machine.recordSuccess(now: self.at(.seconds(second)), wasProbe: true) == nil)
            #expect(machine.state == .halfOpen)
        }
        // Each success freed its permit, so a single permit suffices for three successes.
        #expect(machine.admit(now: self.at(.seconds(12))).admission == .allowedAsProbe)
        #expect(machine.recordSuccess(now: self.at(.seconds(12)), wasProbe: true)?.to == .closed)
    }

    @Test func probeFailureReopensWithFreshCooldown() {
        var machine = self.openedMachine()
        _ = machine.admit(now: self.at(.seconds(10)))
        let transition = machine.recordFailure(now: self.at(.seconds(12)), wasProbe: true)
        #expect(transition == CircuitBreakerTransition(from: .halfOpen, to: .open, reason: .probeFailed))
        #expect(machine.state == .open)
        #expect(machine.admit(now: self.at(.seconds(21))).admission == .rejected(retryAfter: .seconds(1)))
        #expect(machine.admit(now: self.at(.seconds(22))).admission == .allowedAsProbe)
    }

    @Test func unreportedProbePermitExpiresAfterCooldown() {
        var machine = self.openedMachine()
        #expect(machine.admit(now: self.at(.seconds(10))).admission == .allowedAsProbe)
        // The probe never reports back.
        #expect(!machine.admit(now: self.at(.milliseconds(19_999))).admission.isAllowed)
        #expect(machine.admit(now: self.at(.seconds(20))).admission == .allowedAsProbe)
        #expect(machine.state == .halfOpen)
        #expect(machine.probesAdmitted == 2)
    }

    @Test func lateProbeSuccessAfterExpiryStillCounts() {
        var machine = self.openedMachine()
        _ = machine.admit(now: self.at(.seconds(10)))
        _ = machine.admit(now: self.at(.seconds(20)))  // first permit expired, second probe
        #expect(machine.recordSuccess(now: self.at(.seconds(21)), wasProbe: true)?.to == .closed)
    }

    @Test func ignoredProbeFreesItsPermitAtOnce() {
        var machine = self.openedMachine()
        #expect(machine.admit(now: self.at(.seconds(10))).admission == .allowedAsProbe)
        machine.recordIgnored(now: self.at(.seconds(11)), wasProbe: true)
        #expect(machine.state == .halfOpen)
        #expect(machine.admit(now: self.at(.seconds(11))).admission == .allowedAsProbe)
    }

    @Test func ignoredResultsCountNothingWhileClosed() {
        var machine = self.machine()
        for _ in 0..<4 { _ = machine.recordFailure(now: self.t0, wasProbe: false) }
        machine.recordIgnored(now: self.t0, wasProbe: false)
        #expect(machine.consecutiveFailures == 4)
        #expect(machine.windowCounts(at: self.t0) == (0, 4))
    }

    @Test func ignoresNonProbeResultsWhileHalfOpen() {
        var machine = self.openedMachine()
        _ = machine.admit(now: self.at(.seconds(10)))
        #expect(machine.recordFailure(now: self.at(.seconds(10)), wasProbe: false) == nil)
        #expect(machine.recordSuccess(now: self.at(.seconds(10)), wasProbe: false) == nil)
        #expect(machine.state == .halfOpen)
    }

    @Test func ignoresResultsWhileOpen() {
        var machine = self.openedMachine()
        #expect(machine.recordFailure(now: self.at(.seconds(5)), wasProbe: false) == nil)
        #expect(machine.recordSuccess(now: self.at(.seconds(5)), wasProbe: true) == nil)
        #expect(machine.admit(now: self.at(.seconds(5))).admission == .rejected(retryAfter: .seconds(5)))
    }

    @Test func opensWhenFailureRateReachesThreshold() {
        var machine = self.machine()
        // 20 results alternating success/failure: never 5 failures in a row, ratio 0.5 at the 20th.
        for index in 0..<19 {
            let transition =
                index.isMultiple(of: 2)
                ? machine.recordSuccess(now: self.t0, wasProbe: false)
                : machine.recordFailure(now: self.t0, wasProbe: false)
            #expect(transition == nil)
        }
        #expect(machine.windowCounts(at: self.t0) == (10, 9))
        let transition = machine.recordFailure(now: self.t0, wasProbe: false)
        #expect(transition == CircuitBreakerTransition(from: .closed, to: .open, reason: .failureRate))
    }

    @Test func failureRateNeedsMinimumRequestsInWindow() {
        var machine = self.machine(.init(consecutiveFailureThreshold: 100, minimumRequestsInWindow: 20))
        for _ in 0..<19 {
            #expect(machine.recordFailure(now: self.t0, wasProbe: false) == nil)
        }
        #expect(machine.recordFailure(now: self.t0, wasProbe: false)?.reason == .failureRate)
    }

    @Test func failureRateBelowThresholdStaysClosed() {
        var machine = self.machine(.init(consecutiveFailureThreshold: 100))
        for index in 0..<100 {  // 1 failure in 3
            if index % 3 == 0 {
                #expect(machine.recordFailure(now: self.t0, wasProbe: false) == nil)
            } else {
                _ = machine.recordSuccess(now: self.t0, wasProbe: false)
            }
        }
        #expect(machine.state == .closed)
    }

    @Test func oldBucketsExpireFromTheFailureRateWindow() {
        // 30 s window in 10 buckets of 3 s.
        var machine = self.machine(.init(consecutiveFailureThreshold: 100))
        for _ in 0..<19 { _ = machine.recordFailure(now: self.t0, wasProbe: false) }
        #expect(machine.windowCounts(at: self.at(.seconds(29))) == (0, 19))
        // Bucket 0 (0..<3 s) leaves the window when bucket 10 (30..<33 s) begins.
        #expect(machine.windowCounts(at: self.at(.seconds(30))) == (0, 0))
        #expect(machine.recordFailure(now: self.at(.seconds(30)), wasProbe: false) == nil)
        #expect(machine.windowCounts(at: self.at(.seconds(30))) == (0, 1))
    }

    @Test func windowSlidesOneBucketAtATime() {
        var machine = self.machine(.init(consecutiveFailureThreshold: 100))
        _ = machine.recordFailure(now: self.t0, wasProbe: false)  // bucket 0
        _ = machine.recordSuccess(now: self.at(.seconds(3)), wasProbe: false)  // bucket 1
        _ = machine.recordSuccess(now: self.at(.seconds(29)), wasProbe: false)  // bucket 9
        #expect(machine.windowCounts(at: self.at(.seconds(29))) == (2, 1))
        #expect(machine.windowCounts(at: self.at(.seconds(30))) == (2, 0))
        #expect(machine.windowCounts(at: self.at(.seconds(33))) == (1, 0))
        #expect(machine.windowCounts(at: self.at(.seconds(60))) == (0, 0))
    }

    @Test func failuresSpreadOverTheWindowStillOpen() {
        var machine = self.machine(.init(consecutiveFailureThreshold: 100, minimumRequestsInWindow: 10))
        for second in 0..<9 {
            #expect(machine.recordFailure(now: self.at(.seconds(second * 3)), wasProbe: false) == nil)
        }
        #expect(machine.recordFailure(now: self.at(.seconds(29)), wasProbe: false)?.reason == .failureRate)
    }

    @Test func reportsLabels() {
        #expect(CircuitBreakerState.allCases.map(\.label) == ["closed", "open", "half_open"])
        #expect(CircuitBreakerTransition.Reason.failureRate.label == "failure_rate")
    }

    @Test func clampsNonsenseConfiguration() {
        let configuration = CircuitBreakerConfiguration(
            consecutiveFailureThreshold: 0,
            failureRateThreshold: .nan,
            minimumRequestsInWindow: -3,
            window: .zero,
            windowBuckets: 0,
            cooldown: .seconds(-1),
            halfOpenMaxProbes: 0,
            successesToClose: 0
        )
        #expect(configuration.consecutiveFailureThreshold == 1)
        #expect(configuration.failureRateThreshold == 0.5)
        #expect(configuration.minimumRequestsInWindow == 1)
        #expect(configuration.window == .nanoseconds(1))
        #expect(configuration.windowBuckets == 1)
        #expect(configuration.cooldown == .zero)
        #expect(configuration.halfOpenMaxProbes == 1)
        #expect(configuration.successesToClose == 1)
        var machine = self.machine(configuration)
        #expect(machine.recordFailure(now: self.t0, wasProbe: false)?.to == .open)
        #expect(machine.admit(now: self.t0).admission == .allowedAsProbe)
    }
}
