import NIOCore
import NIOHTTP1
import Testing

@testable import SidecarCore
@testable import SidecarHTTP
@testable import SidecarPolicy

/// A stream's role-only opening is held until the first event that says something, so an
/// upstream that stalls or hangs up right after it is retried (the chaos run's slow drip).
extension ForwardingStateMachineTests {
    static let roleOnly = ByteBuffer(
        string: #"data: {"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}"# + "\n\n"
    )
    static let content = ByteBuffer(
        string: #"data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"# + "\n\n"
    )

    /// A streamed request whose head came: the machine holds what comes next.
    func streaming() -> Machine {
        var machine = self.machine(.eventStream)
        _ = self.sent(&machine)
        #expect(machine.headReceived(self.head(200, eventStream: true), retryAfter: nil) == .none)
        return machine
    }

    @Test func aStreamCutAfterItsRoleOnlyOpeningIsRetried() {
        var machine = self.streaming()
        #expect(machine.bodyReceived(Self.roleOnly, now: self.t0) == .none)
        #expect(machine.isAttemptInFlight)
        let stalled = UpstreamError(.deadlineExceeded, upstream: "ollama", detail: "read timed out after 120000 ms")
        let step = machine.failed(stalled, now: self.t0)
        #expect(step.settle == self.release)
        #expect(step.action == .backOff(self.backoff(after: 1), upstream: "ollama", reason: "timeout"))
        // The retry starts clean: its own opening is held, then committed with its content.
        _ = machine.backoffElapsed()
        _ = machine.leased(upstream: "ollama", isProbe: false, now: self.t0)
        _ = machine.headReceived(self.head(200, eventStream: true), retryAfter: nil)
        #expect(machine.bodyReceived(Self.roleOnly, now: self.t0) == .none)
        guard case .commit(_, _, _, let chunk?, false) = machine.bodyReceived(Self.content, now: self.t0).action else {
            return failed("not committed")
        }
        #expect(chunk == Self.joined(Self.roleOnly, Self.content))
    }

    @Test func theHeldOpeningGoesOutWithTheFirstContentInOneChunk() {
        var machine = self.streaming()
        #expect(machine.bodyReceived(Self.roleOnly, now: self.t0) == .none)
        let commit = machine.bodyReceived(Self.content, now: self.t0)
        #expect(commit.settle == .init(verdict: .success, wasProbe: false, release: false))
        guard case .commit(_, _, true, let chunk?, false) = commit.action else { return failed("not committed") }
        #expect(chunk == Self.joined(Self.roleOnly, Self.content))
        // From here on it is a relay: a cut is the stream's end, never a retry.
        #expect(machine.bodyReceived(Self.content, now: self.t0).action == .relay(Self.content))
        let cut = UpstreamError(.connectionClosed, upstream: "ollama", detail: "eof")
        #expect(machine.failed(cut, now: self.t0).action == .endStream(failure: cut))
    }

    @Test func aStreamThatEndsAfterItsOpeningIsCommittedWithWhatWasHeld() {
        var machine = self.streaming()
        _ = machine.bodyReceived(Self.roleOnly, now: self.t0)
        let end = machine.finished(now: self.t0)
        guard case .commit(_, _, _, let chunk?, true) = end.action else { return failed("not committed") }
        #expect(chunk == Self.roleOnly)
        #expect(end.settle == .init(verdict: .success, wasProbe: false, release: true))
    }

    @Test func theRequestDeadlineWhileTheOpeningIsHeldEndsIn504() {
        var machine = self.streaming()
        _ = machine.bodyReceived(Self.roleOnly, now: self.t0)
        guard case .fail(let error) = machine.bodyReceived(Self.roleOnly, now: self.t0 + .seconds(60)).action else {
            return failed("did not fail")
        }
        #expect(error.status.code == 504)
    }

    @Test func passThroughAnswersAreCommittedAtTheirFirstChunkWhateverItHolds() {
        var machine = self.machine(.passThrough, candidates: [self.local], retriesStatuses: false)
        _ = self.sent(&machine)
        _ = machine.headReceived(self.head(200, eventStream: true), retryAfter: nil)
        guard case .commit(_, _, false, let chunk?, false) = machine.bodyReceived(Self.roleOnly, now: self.t0).action
        else { return failed("not committed") }
        #expect(chunk == Self.roleOnly)
    }

    static func joined(_ first: ByteBuffer, _ second: ByteBuffer) -> ByteBuffer {
        var joined = first
        var second = second
        joined.writeBuffer(&second)
        return joined
    }
}
