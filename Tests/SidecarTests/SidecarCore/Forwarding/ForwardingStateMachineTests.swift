import NIOCore
import NIOHTTP1
import Testing

@testable import SidecarCore
@testable import SidecarHTTP
@testable import SidecarPolicy

/// The forwarding state machine, event by event: no socket, no event loop, no sleep. Each test
/// is one row of the chaos fault matrix (Benchmarks/chaos) or a rule of the forwarding contract.
@Suite struct ForwardingStateMachineTests {
    typealias Machine = ForwardingStateMachine
    typealias Step = ForwardingStateMachine.Step

    let t0 = ContinuousClock.now
    let policy = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(100), maxDelay: .seconds(1))
    let local = UpstreamCandidate(model: "small-local", upstream: "ollama")
    let cloud = UpstreamCandidate(model: "big-cloud", upstream: "cloud")

    func machine(
        _ answer: ForwardingConfiguration.Answer = .whole,
        candidates: [UpstreamCandidate]? = nil,
        deadline: Duration = .seconds(60),
        retriesStatuses: Bool = true,
        maxResponseBytes: Int = 1 << 20
    ) -> Machine {
        Machine(
            ForwardingConfiguration(
                candidates: candidates ?? [self.local, self.cloud],
                deadline: self.t0 + deadline,
                firstByteTimeout: .seconds(10),
                policy: self.policy,
                retriesStatuses: retriesStatuses,
                answer: answer,
                maxResponseBytes: maxResponseBytes
            ),
            jitter: .constant(0.5)
        )
    }

    func head(_ code: Int, eventStream: Bool = false) -> HTTPResponseHead {
        var head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: code))
        head.headers.add(name: "Content-Type", value: eventStream ? "text/event-stream" : "application/json")
        return head
    }

    func backoff(after attempts: Int) -> Duration {
        self.policy.backoff(afterFailedAttempts: attempts, jitter: 0.5)
    }

    /// Starts and leases the first candidate's upstream: the machine is waiting for a head.
    func sent(_ machine: inout Machine, upstream: String = "ollama", isProbe: Bool = false) -> Step {
        #expect(machine.start().action == .acquire(self.local))
        return machine.leased(upstream: upstream, isProbe: isProbe, now: self.t0)
    }

    let release = Machine.Settlement(verdict: .failure, wasProbe: false, release: true)

    func failed(_ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
    }

    // MARK: Success

    @Test func deliversAWholeAnswerAndRecordsASuccess() {
        var machine = self.machine()
        let send = self.sent(&machine)
        #expect(
            send.action
                == .send(
                    .init(model: "small-local", upstream: "ollama", number: 1, headDeadline: self.t0 + .seconds(10))
                )
        )
        #expect(machine.headReceived(self.head(200), retryAfter: nil) == .none)
        #expect(machine.bodyReceived(ByteBuffer(string: "{\"a\":"), now: self.t0) == .none)
        #expect(machine.bodyReceived(ByteBuffer(string: "1}"), now: self.t0) == .none)
        let step = machine.finished(now: self.t0)
        #expect(step.settle == .init(verdict: .success, wasProbe: false, release: true))
        #expect(
            step.action
                == .deliver(
                    self.head(200),
                    body: ByteBuffer(string: "{\"a\":1}"),
                    served: .init(model: "small-local", upstream: "ollama", fallbackFrom: nil)
                )
        )
    }

    @Test func theHeadDeadlineIsTheRequestDeadlineWhenThatComesFirst() {
        var machine = self.machine(deadline: .seconds(3))
        guard case .send(let attempt) = self.sent(&machine).action else { return failed("no send") }
        #expect(attempt.headDeadline == self.t0 + .seconds(3))
    }

    @Test func aClientErrorIsDeliveredAsItIsAndSaysNothingAboutTheUpstream() {
        var machine = self.machine()
        _ = self.sent(&machine)
        #expect(machine.headReceived(self.head(400), retryAfter: nil) == .none)
        let step = machine.finished(now: self.t0)
        #expect(step.settle?.verdict == .ignored)
        guard case .deliver(let head, _, _) = step.action else { return failed("not delivered") }
        #expect(head.status.code == 400)
    }

    @Test func aProbeAdmittedByAHalfOpenBreakerIsReportedAsAProbe() {
        var machine = self.machine()
        _ = self.sent(&machine, isProbe: true)
        _ = machine.headReceived(self.head(200), retryAfter: nil)
        #expect(machine.finished(now: self.t0).settle == .init(verdict: .success, wasProbe: true, release: true))
    }

    // MARK: The fault matrix, before the first byte: retried

    @Test func a5xxIsRetriedAfterBackoffThenTheFallbackAnswers() {
        var machine = self.machine()
        _ = self.sent(&machine)
        for attempt in 1...3 {
            #expect(machine.headReceived(self.head(503), retryAfter: nil) == .none)
            #expect(
                machine.bodyReceived(ByteBuffer(string: #"{"error":{"message":"overloaded"}}"#), now: self.t0) == .none
            )
            let failed = machine.finished(now: self.t0)
            #expect(failed.settle == self.release)
            #expect(failed.failure == "status_503")
            if attempt < 3 {
                #expect(
                    failed.action == .backOff(self.backoff(after: attempt), upstream: "ollama", reason: "status_503")
                )
                #expect(machine.backoffElapsed().action == .acquire(self.local))
                guard case .send(let next) = machine.leased(upstream: "ollama", isProbe: false, now: self.t0).action
                else { return self.failed("no retry") }
                #expect(next.number == attempt + 1)
            } else {
                // Attempts exhausted: the fallback model is next.
                #expect(failed.action == .acquire(self.cloud))
            }
        }
        _ = machine.leased(upstream: "cloud", isProbe: false, now: self.t0)
        _ = machine.headReceived(self.head(200), retryAfter: nil)
        guard case .deliver(_, _, let served) = machine.finished(now: self.t0).action else {
            return failed("not delivered")
        }
        #expect(served == .init(model: "big-cloud", upstream: "cloud", fallbackFrom: "small-local"))
        #expect(machine.attempts == 4)
    }

    @Test func everyCandidateFailingEndsIn502NamingEachOne() {
        var machine = self.machine(candidates: [self.local, self.cloud])
        var step = self.sent(&machine)
        for _ in 1...6 {
            _ = machine.headReceived(self.head(502), retryAfter: nil)
            step = machine.finished(now: self.t0)
            if case .backOff = step.action { step = machine.backoffElapsed() }
            if case .acquire(let candidate) = step.action {
                step = machine.leased(upstream: candidate.upstream, isProbe: false, now: self.t0)
            }
        }
        guard case .fail(let error) = step.action else { return failed("did not fail: \(step)") }
        #expect(machine.attempts == 6)
        #expect(error.status.code == 502)
        #expect(error.code == "upstream_status_502")
        #expect(error.message.contains("Tried in order: small-local (3 attempt(s)): ollama answered 502"))
        #expect(error.message.contains("big-cloud (3 attempt(s)): cloud answered 502"))
    }

    @Test func theSame500TwiceIsDeterministicAndTheFallbackIsTriedAtOnce() {
        var machine = self.machine()
        _ = self.sent(&machine)
        let error = ByteBuffer(string: #"{"error":{"message":"embeddings are not enabled"}}"#)
        _ = machine.headReceived(self.head(500), retryAfter: nil)
        _ = machine.bodyReceived(error, now: self.t0)
        #expect(
            machine.finished(now: self.t0).action
                == .backOff(self.backoff(after: 1), upstream: "ollama", reason: "status_500")
        )
        _ = machine.backoffElapsed()
        _ = machine.leased(upstream: "ollama", isProbe: false, now: self.t0)
        _ = machine.headReceived(self.head(500), retryAfter: nil)
        _ = machine.bodyReceived(error, now: self.t0)
        let second = machine.finished(now: self.t0)
        // Not tried a third time; the first 500 counted against the upstream, the repeat does not.
        #expect(second.settle == .init(verdict: .ignored, wasProbe: false, release: true))
        #expect(second.action == .acquire(self.cloud))
    }

    @Test func differing500sAreRetriedAsUsual() {
        var machine = self.machine()
        _ = self.sent(&machine)
        _ = machine.headReceived(self.head(500), retryAfter: nil)
        _ = machine.bodyReceived(ByteBuffer(string: #"{"error":{"message":"one"}}"#), now: self.t0)
        _ = machine.finished(now: self.t0)
        _ = machine.backoffElapsed()
        _ = machine.leased(upstream: "ollama", isProbe: false, now: self.t0)
        _ = machine.headReceived(self.head(500), retryAfter: nil)
        _ = machine.bodyReceived(ByteBuffer(string: #"{"error":{"message":"two"}}"#), now: self.t0)
        #expect(
            machine.finished(now: self.t0).action
                == .backOff(self.backoff(after: 2), upstream: "ollama", reason: "status_500")
        )
    }

    @Test func anUpstreamRejectingTheSidecarsKeyIsSkippedForTheFallback() {
        var machine = self.machine()
        _ = self.sent(&machine)
        _ = machine.headReceived(self.head(401), retryAfter: nil)
        _ = machine.bodyReceived(ByteBuffer(string: #"{"detail":"Invalid API key"}"#), now: self.t0)
        let step = machine.finished(now: self.t0)
        #expect(step.settle == self.release)
        #expect(step.action == .acquire(self.cloud))
    }

    @Test func aRejectedClientCredentialIsTheClientsAnswer() {
        var machine = self.machine()
        #expect(machine.start().action == .acquire(self.local))
        _ = machine.leased(upstream: "ollama", isProbe: false, clientCredential: true, now: self.t0)
        _ = machine.headReceived(self.head(401), retryAfter: nil)
        guard case .deliver(let head, _, _) = machine.finished(now: self.t0).action else {
            return self.failed("not delivered")
        }
        #expect(head.status.code == 401)
    }

    @Test func anUpstreamTracebackIsCutToOneShortLine() {
        let traceback = "1 validation error\n" + String(repeating: "File \"/srv/app.py\", line 376\n", count: 40)
        let message = ForwardingErrors.message(fromErrorBody: ByteBuffer(string: traceback))
        #expect(!message.contains("\n"))
        #expect(message.count <= 243)
        #expect(message.hasPrefix("1 validation error File"))
    }

    @Test func a429HonoursRetryAfterAndIsNotHeldAgainstTheUpstream() {
        var machine = self.machine()
        _ = self.sent(&machine)
        _ = machine.headReceived(self.head(429), retryAfter: .seconds(2))
        let step = machine.finished(now: self.t0)
        #expect(step.settle?.verdict == .ignored)
        #expect(step.action == .backOff(.seconds(2), upstream: "ollama", reason: "status_429"))
    }

    @Test func a429AskingForTooLongAWaitMovesToTheFallbackAtOnce() {
        var machine = self.machine(candidates: [self.local])
        _ = self.sent(&machine)
        _ = machine.headReceived(self.head(429), retryAfter: .seconds(600))
        _ = machine.bodyReceived(ByteBuffer(string: #"{"error":{"message":"slow down"}}"#), now: self.t0)
        let step = machine.finished(now: self.t0)
        guard case .fail(let error) = step.action else { return failed("did not fail") }
        #expect(error.status.code == 429)
        #expect(error.retryAfter == .seconds(600))
        #expect(error.message.contains("slow down"))
    }

    @Test func connectionRefusedIsRetried() {
        var machine = self.machine()
        _ = self.sent(&machine)
        let step = machine.failed(UpstreamError(.connectFailed, upstream: "ollama", detail: "refused"), now: self.t0)
        #expect(step.settle == self.release)
        #expect(step.failure == "connect_failed")
        #expect(step.action == .backOff(self.backoff(after: 1), upstream: "ollama", reason: "connect_failed"))
    }

    @Test func aConnectionClosedBeforeTheHeadIsRetried() {
        var machine = self.machine()
        _ = self.sent(&machine)
        let step = machine.failed(UpstreamError(.connectionClosed, upstream: "ollama", detail: "eof"), now: self.t0)
        #expect(step.action == .backOff(self.backoff(after: 1), upstream: "ollama", reason: "timeout"))
    }

    @Test func aHangBeforeTheHeadTimesOutAndIsRetried() {
        var machine = self.machine()
        _ = self.sent(&machine)
        let step = machine.headTimedOut(now: self.t0 + .seconds(10))
        #expect(step.settle == self.release)
        #expect(step.failure == "deadline_exceeded")
        #expect(step.action == .backOff(self.backoff(after: 1), upstream: "ollama", reason: "timeout"))
        // A late head of the abandoned attempt changes nothing.
        #expect(machine.headReceived(self.head(200), retryAfter: nil) == .none)
    }

    @Test func aHeadThenSilenceIsRetriedWhenTheIdleTimeoutFires() {
        var machine = self.machine()
        _ = self.sent(&machine)
        _ = machine.headReceived(self.head(200), retryAfter: nil)
        let idle = UpstreamError(.deadlineExceeded, upstream: "ollama", detail: "read timed out after 120000 ms")
        let step = machine.failed(idle, now: self.t0 + .seconds(5))
        #expect(step.settle == self.release)
        #expect(step.action == .backOff(self.backoff(after: 1), upstream: "ollama", reason: "timeout"))
    }

    @Test func aWholeBodyCutShortIsRetriedBecauseNothingReachedTheClient() {
        var machine = self.machine()
        _ = self.sent(&machine)
        _ = machine.headReceived(self.head(200), retryAfter: nil)
        _ = machine.bodyReceived(ByteBuffer(string: "{\"choices\":"), now: self.t0)
        let step = machine.failed(UpstreamError(.connectionClosed, upstream: "ollama", detail: "eof"), now: self.t0)
        #expect(step.action == .backOff(self.backoff(after: 1), upstream: "ollama", reason: "timeout"))
        // The retry starts with an empty body.
        _ = machine.backoffElapsed()
        _ = machine.leased(upstream: "ollama", isProbe: false, now: self.t0)
        _ = machine.headReceived(self.head(200), retryAfter: nil)
        _ = machine.bodyReceived(ByteBuffer(string: "{}"), now: self.t0)
        guard case .deliver(_, let body, _) = machine.finished(now: self.t0).action else {
            return failed("not delivered")
        }
        #expect(body == ByteBuffer(string: "{}"))
    }

    @Test func aStreamCutBeforeItsFirstChunkIsRetried() {
        var machine = self.machine(.eventStream)
        _ = self.sent(&machine)
        #expect(machine.headReceived(self.head(200, eventStream: true), retryAfter: nil) == .none)
        let step = machine.failed(UpstreamError(.connectionClosed, upstream: "ollama", detail: "eof"), now: self.t0)
        #expect(step.action == .backOff(self.backoff(after: 1), upstream: "ollama", reason: "timeout"))
    }

    // MARK: After the first byte: never retried

    @Test func aStreamIsCommittedAtItsFirstChunkAndRelayed() {
        var machine = self.machine(.eventStream)
        _ = self.sent(&machine)
        _ = machine.headReceived(self.head(200, eventStream: true), retryAfter: nil)
        let first = ByteBuffer(string: "data: {}\n\n")
        let commit = machine.bodyReceived(first, now: self.t0)
        // The verdict comes at the commit; the lease is held until the stream ends.
        #expect(commit.settle == .init(verdict: .success, wasProbe: false, release: false))
        #expect(
            commit.action
                == .commit(
                    self.head(200, eventStream: true),
                    served: .init(model: "small-local", upstream: "ollama", fallbackFrom: nil),
                    isEventStream: true,
                    chunk: first,
                    ends: false
                )
        )
        #expect(machine.bodyReceived(first, now: self.t0).action == .relay(first))
        let end = machine.finished(now: self.t0)
        #expect(end.settle == .init(verdict: nil, wasProbe: false, release: true))
        #expect(end.action == .endStream(failure: nil))
    }

    @Test func aStreamCutAfterContentEndsWithTheFailureAndIsNotRetried() {
        var machine = self.machine(.eventStream)
        _ = self.sent(&machine)
        _ = machine.headReceived(self.head(200, eventStream: true), retryAfter: nil)
        _ = machine.bodyReceived(ByteBuffer(string: "data: {}\n\n"), now: self.t0)
        let cut = UpstreamError(.connectionClosed, upstream: "ollama", detail: "eof")
        let step = machine.failed(cut, now: self.t0)
        #expect(step.settle == .init(verdict: .failure, wasProbe: false, release: true))
        #expect(step.failure == "connection_closed")
        #expect(step.action == .endStream(failure: cut))
        #expect(machine.attempts == 1)
    }

    @Test func aStreamRequestAnsweredWithJSONIsReadWhole() {
        var machine = self.machine(.eventStream)
        _ = self.sent(&machine)
        _ = machine.headReceived(self.head(200), retryAfter: nil)
        _ = machine.bodyReceived(ByteBuffer(string: "{}"), now: self.t0)
        guard case .deliver = machine.finished(now: self.t0).action else { return failed("not delivered") }
    }

    @Test func passThroughRelaysErrorAnswersAtOnceAndNeverRetriesStatuses() {
        var machine = self.machine(.passThrough, candidates: [self.local], retriesStatuses: false)
        _ = self.sent(&machine)
        let step = machine.headReceived(self.head(500), retryAfter: nil)
        guard case .commit(let head, let served, let isEventStream, nil, false) = step.action else {
            return failed("not committed: \(step)")
        }
        #expect(head.status.code == 500)
        #expect(served.model == "")
        #expect(!isEventStream)
    }
}
