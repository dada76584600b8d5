import NIOCore
import NIOHTTP1
import Testing

@testable import SidecarCore
@testable import SidecarHTTP
@testable import SidecarPolicy

/// Deadlines, the retry budget, breakers and limits: more rows of the fault matrix.
extension ForwardingStateMachineTests {
    // MARK: Deadlines, budgets, breakers

    @Test func theRequestDeadlineDuringAnAttemptEndsIn504() {
        var machine = self.machine(deadline: .seconds(30))
        _ = self.sent(&machine)
        let step = machine.deadlinePassed(now: self.t0 + .seconds(30))
        #expect(step.settle == self.release)
        guard case .fail(let error) = step.action else { return failed("did not fail") }
        #expect(error.status.code == 504)
        #expect(error.code == "upstream_timeout")
    }

    @Test func theRequestDeadlineDuringABackOffEndsIn504() {
        var machine = self.machine()
        _ = self.sent(&machine)
        _ = machine.failed(UpstreamError(.connectFailed, upstream: "ollama", detail: "refused"), now: self.t0)
        guard case .fail(let error) = machine.deadlinePassed(now: self.t0 + .seconds(60)).action else {
            return failed("did not fail")
        }
        #expect(error.status.code == 504)
        #expect(machine.backoffElapsed() == .none)
    }

    @Test func theRequestDeadlineMidStreamEndsTheStream() {
        var machine = self.machine(.eventStream)
        _ = self.sent(&machine)
        _ = machine.headReceived(self.head(200, eventStream: true), retryAfter: nil)
        _ = machine.bodyReceived(ByteBuffer(string: "data: {}\n\n"), now: self.t0)
        guard case .endStream(let failure?) = machine.deadlinePassed(now: self.t0 + .seconds(60)).action else {
            return failed("stream not ended")
        }
        #expect(failure.isDeadline)
    }

    @Test func aBackOffThatWouldPassTheDeadlineMovesOnInstead() {
        var machine = self.machine(candidates: [self.local], deadline: .milliseconds(120))
        _ = self.sent(&machine)
        let step = machine.failed(
            UpstreamError(.connectFailed, upstream: "ollama", detail: "refused"),
            now: self.t0 + .milliseconds(100)
        )
        guard case .fail(let error) = step.action else { return failed("did not fail: \(step)") }
        #expect(error.status.code == 502)
        #expect(error.code == "upstream_connect_failed")
    }

    @Test func anExhaustedRetryBudgetMovesToTheFallback() {
        var machine = self.machine()
        _ = self.sent(&machine)
        _ = machine.failed(UpstreamError(.connectFailed, upstream: "ollama", detail: "refused"), now: self.t0)
        #expect(machine.retryBudgetExhausted().action == .acquire(self.cloud))
    }

    @Test func everyBreakerOpenEndsIn503WithTheShortestWait() {
        var machine = self.machine()
        #expect(machine.start().action == .acquire(self.local))
        #expect(machine.unavailable(retryAfter: .seconds(7)).action == .acquire(self.cloud))
        let step = machine.unavailable(retryAfter: .seconds(3))
        guard case .fail(let error) = step.action else { return failed("did not fail") }
        #expect(error.status.code == 503)
        #expect(error.code == "upstreams_unavailable")
        #expect(error.retryAfter == .seconds(3))
        #expect(machine.attempts == 0)
    }

    @Test func anOpenBreakerOnTheRetryMovesOnAndNamesTheCandidate() {
        var machine = self.machine(candidates: [self.local])
        _ = self.sent(&machine)
        _ = machine.failed(UpstreamError(.connectFailed, upstream: "ollama", detail: "refused"), now: self.t0)
        _ = machine.backoffElapsed()
        guard case .fail(let error) = machine.unavailable(retryAfter: .seconds(5)).action else {
            return failed("did not fail")
        }
        // The last real failure is reported, not the breaker.
        #expect(error.code == "upstream_connect_failed")
    }

    // MARK: Limits and the client

    @Test func anAnswerOverTheLimitFailsWithoutBlamingTheUpstream() {
        var machine = self.machine(maxResponseBytes: 4)
        _ = self.sent(&machine)
        _ = machine.headReceived(self.head(200), retryAfter: nil)
        let step = machine.bodyReceived(ByteBuffer(string: "12345"), now: self.t0)
        #expect(step.settle == .init(verdict: .ignored, wasProbe: false, release: true))
        #expect(step.failure == "response_too_large")
        guard case .fail(let error) = step.action else { return failed("did not fail") }
        #expect(error.status.code == 502)
    }

    @Test func theClientGoingAwayMidAttemptSaysNothingAboutTheUpstream() {
        var machine = self.machine()
        _ = self.sent(&machine)
        let step = machine.clientGone()
        #expect(step.settle == .init(verdict: .ignored, wasProbe: false, release: true))
        #expect(step.action == .abandon)
        #expect(machine.finished(now: self.t0) == .none)
    }

    @Test func anUnusableUpstreamURLFailsAtOnce() {
        var machine = self.machine()
        _ = self.sent(&machine)
        let error = SidecarError.internalError("bad base_url")
        let step = machine.requestNotBuilt(error)
        #expect(step.settle?.release == true)
        #expect(step.action == .fail(error))
    }

    @Test func jitterSamplesAreInTheUnitIntervalAndRepeatForASeed() {
        var first = JitterSource(seed: 42)
        var second = JitterSource(seed: 42)
        for _ in 0..<1000 {
            let sample = first.next()
            #expect(sample >= 0 && sample < 1)
            #expect(sample == second.next())
        }
    }
}
