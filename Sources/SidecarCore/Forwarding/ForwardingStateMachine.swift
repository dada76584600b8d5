import NIOCore
import NIOHTTP1
import SidecarHTTP
import SidecarPolicy

/// One forwarded request's attempts, retries and fallbacks as a value: events in, a ``Step``
/// out. No I/O, no clock and no randomness of its own: the time comes with each event and the
/// jitter from a seeded ``JitterSource``, so every path runs in a unit test without sockets or
/// sleeps. ``ForwardExchange`` is the thin NIO shell that performs the steps.
///
/// For each candidate in order: lease an upstream (the shell asks the model's balancer, which
/// skips open breakers), send with a first-byte deadline, and on a retryable failure back off
/// (backoff or `Retry-After`) and try again while the policy, the retry budget and the request
/// deadline allow; then move to the next candidate. Nothing is retried once a byte of the answer
/// went to the client: whole answers are read inside the attempt, event streams are held until
/// their first event that says something (``StreamPrelude``: a role-only opening is held, so an
/// upstream that stalls or hangs up right after it is retried), other relayed answers until their
/// first chunk.
///
/// ```swift
/// var machine = ForwardingStateMachine(configuration, jitter: JitterSource(seed: 1))
/// var step = machine.start()                       // .acquire(candidate 0)
/// step = machine.leased(upstream: "cloud", isProbe: false, now: .now)   // .send(attempt)
/// step = machine.headReceived(head, retryAfter: nil)                    // .none: read the body
/// ```
struct ForwardingStateMachine {
    enum State {
        /// Waiting for the shell to lease an upstream for the current candidate.
        case acquiring
        case awaitingHead
        /// A retryable status: its (short) body is read for the error message.
        case readingFailedBody
        case readingWholeBody
        /// Holding a relayed answer's first bytes until they say something.
        case awaitingFirstChunk
        /// The head went to the client: chunks pass through, nothing is retried.
        case relaying
        case backingOff
        case done
    }

    static let failedBodyLimit = 1 << 16

    private let configuration: ForwardingConfiguration
    private(set) var state = State.acquiring
    private var candidateIndex = 0
    /// Attempts on the current candidate.
    private var attempt = 0
    /// Attempts on every candidate.
    private(set) var attempts = 0
    private(set) var lease: Lease?
    private var head: HTTPResponseHead?
    private var retryAfter: Duration?
    private var body = ByteBuffer()
    private var held = HeldStart(prelude: false)
    private var lastFailure: Failure?
    private var breakerWait: Duration?
    private var tried: [String] = []
    private var jitter: JitterSource

    init(_ configuration: ForwardingConfiguration, jitter: JitterSource) {
        self.configuration = configuration
        self.jitter = jitter
    }

    // MARK: Events from the shell

    mutating func start() -> Step {
        self.nextCandidate()
    }

    /// The balancer picked `upstream` for the current candidate. `clientCredential`: the upstream
    /// gets the client's own `Authorization` (else the sidecar's key, or none).
    mutating func leased(
        upstream: String,
        isProbe: Bool,
        clientCredential: Bool = false,
        now: ContinuousClock.Instant
    ) -> Step {
        guard self.state == .acquiring else { return .none }
        self.lease = Lease(upstream: upstream, isProbe: isProbe, clientCredential: clientCredential)
        self.attempt += 1
        self.attempts += 1
        self.head = nil
        self.retryAfter = nil
        self.body.clear()
        self.state = .awaitingHead
        let candidate = self.configuration.candidates[self.candidateIndex]
        return Step(
            action: .send(
                Attempt(
                    model: candidate.model,
                    upstream: upstream,
                    number: self.attempt,
                    headDeadline: min(self.configuration.deadline, now + self.configuration.firstByteTimeout)
                )
            )
        )
    }

    /// Every upstream of the current candidate has its breaker open (or the candidate has none).
    mutating func unavailable(retryAfter: Duration?) -> Step {
        guard self.state == .acquiring else { return .none }
        self.breakerWait = [self.breakerWait, retryAfter].compactMap { $0 }.min()
        return self.endCandidate()
    }

    /// The request for the leased upstream could not be built (its base URL is unusable).
    mutating func requestNotBuilt(_ error: SidecarError) -> Step {
        guard self.state == .awaitingHead, let lease = self.lease else { return .none }
        self.state = .done
        return Step(settle: Settlement(verdict: .ignored, wasProbe: lease.isProbe, release: true), action: .fail(error))
    }

    mutating func headReceived(_ head: HTTPResponseHead, retryAfter: Duration?) -> Step {
        guard self.state == .awaitingHead else { return .none }
        self.head = head
        let code = Int(head.status.code)
        // 401/403 to the sidecar's own key say this upstream is unusable (a wrong or missing
        // key in the configuration), not that the client erred: the fallback is tried instead.
        let rejectsSidecarKey = (code == 401 || code == 403) && self.lease?.clientCredential == false
        if self.configuration.retriesStatuses
            && (self.configuration.policy.retryableStatuses.contains(code) || rejectsSidecarKey)
        {
            self.retryAfter = retryAfter
            self.state = .readingFailedBody
            return .none
        }
        let successful = (200..<300).contains(code)
        switch self.configuration.answer {
        case .whole:
            self.state = .readingWholeBody
        case .eventStream:
            let isEventStream = successful && Self.isEventStream(head.headers)
            self.state = isEventStream ? .awaitingFirstChunk : .readingWholeBody
            self.held = HeldStart(prelude: isEventStream)
        case .passThrough:
            guard successful else { return self.commit(chunk: nil, ends: false) }
            self.state = .awaitingFirstChunk
            self.held = HeldStart(prelude: false)
        }
        return .none
    }

    mutating func bodyReceived(_ buffer: ByteBuffer, now: ContinuousClock.Instant) -> Step {
        switch self.state {
        case .readingFailedBody:
            if now >= self.configuration.deadline { return self.deadlinePassed(now: now) }
            var buffer = buffer
            if self.body.readableBytes < Self.failedBodyLimit { self.body.writeBuffer(&buffer) }
            return .none
        case .readingWholeBody:
            if now >= self.configuration.deadline { return self.deadlinePassed(now: now) }
            let limit = self.configuration.maxResponseBytes
            guard self.body.readableBytes + buffer.readableBytes <= limit else {
                self.state = .done
                let error = UpstreamError(
                    .responseTooLarge,
                    upstream: self.lease?.upstream ?? "",
                    detail: "response body over \(limit) bytes"
                )
                return Step(
                    settle: Settlement(verdict: .ignored, wasProbe: self.lease?.isProbe ?? false, release: true),
                    failure: error.shortDescription,
                    action: .fail(.upstream(error))
                )
            }
            if self.body.readableBytes == 0 {
                self.body = buffer  // the common single-read answer: no copy
            } else {
                var buffer = buffer
                self.body.writeBuffer(&buffer)
            }
            return .none
        case .awaitingFirstChunk:
            if now >= self.configuration.deadline { return self.deadlinePassed(now: now) }
            return self.held.keep(buffer) ? .none : self.commit(chunk: self.held.take(), ends: false)
        case .relaying:
            return Step(action: .relay(buffer))
        case .acquiring, .awaitingHead, .backingOff, .done:
            return .none
        }
    }

    mutating func finished(now: ContinuousClock.Instant) -> Step {
        switch self.state {
        case .readingFailedBody: return self.failedStatusRead(now: now)
        case .readingWholeBody: return self.deliver()
        case .awaitingFirstChunk: return self.commit(chunk: self.held.take(), ends: true)
        case .relaying: return self.endStream(failure: nil)
        case .acquiring, .awaitingHead, .backingOff, .done: return .none
        }
    }

    mutating func failed(_ error: UpstreamError, now: ContinuousClock.Instant) -> Step {
        switch self.state {
        // The status already says what failed; a cut error body does not change that.
        case .readingFailedBody: return self.failedStatusRead(now: now)
        case .awaitingHead, .readingWholeBody, .awaitingFirstChunk: return self.attemptFailed(error, now: now)
        case .relaying: return self.endStream(failure: error)
        case .acquiring, .backingOff, .done: return .none
        }
    }

    /// The attempt's first-byte deadline passed with no response head.
    mutating func headTimedOut(now: ContinuousClock.Instant) -> Step {
        guard self.state == .awaitingHead, let lease = self.lease else { return .none }
        let error = UpstreamError(
            .deadlineExceeded,
            upstream: lease.upstream,
            detail: "no response before the first-byte deadline"
        )
        return self.attemptFailed(error, now: now)
    }

    /// The whole request's deadline passed.
    mutating func deadlinePassed(now: ContinuousClock.Instant) -> Step {
        let upstream = self.lease?.upstream ?? self.configuration.candidates.first?.upstream ?? ""
        let error = UpstreamError(.deadlineExceeded, upstream: upstream, detail: "request deadline exceeded")
        switch self.state {
        case .awaitingHead, .readingFailedBody, .readingWholeBody, .awaitingFirstChunk:
            return self.attemptFailed(error, now: now)
        case .acquiring, .backingOff:
            self.state = .done
            return Step(action: .fail(.upstream(error)))
        case .relaying:
            return self.endStream(failure: error)
        case .done:
            return .none
        }
    }

    mutating func backoffElapsed() -> Step {
        guard self.state == .backingOff else { return .none }
        self.state = .acquiring
        return Step(action: .acquire(self.configuration.candidates[self.candidateIndex]))
    }

    /// The upstream's retry budget refused the retry that ``Action/backOff(_:upstream:reason:)`` asked for.
    mutating func retryBudgetExhausted() -> Step {
        guard self.state == .backingOff else { return .none }
        return self.endCandidate()
    }

    /// The client went away: nothing more is sent, nothing is held against the upstream.
    mutating func clientGone() -> Step {
        guard self.state != .done else { return .none }
        let inFlight = self.isAttemptInFlight
        self.state = .done
        guard let lease = self.lease else { return Step(action: .abandon) }
        return Step(
            settle: Settlement(verdict: inFlight ? .ignored : nil, wasProbe: lease.isProbe, release: true),
            action: .abandon
        )
    }

    // MARK: Outcomes

    private mutating func attemptFailed(_ error: UpstreamError, now: ContinuousClock.Instant) -> Step {
        let settle = Settlement(verdict: .failure, wasProbe: self.lease?.isProbe ?? false, release: true)
        if now >= self.configuration.deadline {
            self.state = .done
            let deadline = UpstreamError(
                .deadlineExceeded,
                upstream: error.upstream,
                detail: "request deadline exceeded"
            )
            return Step(settle: settle, failure: error.shortDescription, action: .fail(.upstream(deadline)))
        }
        self.lastFailure = .error(error)
        let failure: RetryableFailure =
            error.isConnectFailure ? .connectFailed : (error.code == .other ? .other : .timedOutBeforeFirstByte)
        return self.retryOrMoveOn(failure, retryAfter: nil, now: now)
            .settling(settle, failure: error.shortDescription)
    }

    private mutating func failedStatusRead(now: ContinuousClock.Instant) -> Step {
        guard let head = self.head, let lease = self.lease else { return .none }
        let code = Int(head.status.code)
        // A 429 says the caller is too fast, not that the upstream is unhealthy.
        let settle = Settlement(verdict: code == 429 ? .ignored : .failure, wasProbe: lease.isProbe, release: true)
        let failure = Failure.status(
            code: code,
            message: ForwardingErrors.message(fromErrorBody: self.body),
            retryAfter: self.retryAfter,
            upstream: lease.upstream
        )
        // The same 500 with the same message twice from one upstream is this request's own
        // (a deterministic error: a parameter the server rejects, a server without embeddings).
        // A third try is wasted, and the repeat says nothing more about the upstream's health.
        let deterministic = code == 500 && self.attempt > 1 && failure == self.lastFailure
        self.lastFailure = failure
        if deterministic {
            let ignored = Settlement(verdict: .ignored, wasProbe: lease.isProbe, release: true)
            return self.endCandidate().settling(ignored, failure: "status_\(code)")
        }
        return self.retryOrMoveOn(.status(code), retryAfter: self.retryAfter, now: now)
            .settling(settle, failure: "status_\(code)")
    }

    private mutating func retryOrMoveOn(
        _ failure: RetryableFailure,
        retryAfter: Duration?,
        now: ContinuousClock.Instant
    ) -> Step {
        let upstream = self.lease?.upstream ?? ""
        let decision = self.configuration.policy.decision(
            attempt: self.attempt,
            failure: failure,
            retryAfter: retryAfter,
            timeLeft: now.duration(to: self.configuration.deadline),
            jitter: self.jitter.next(),
            budgetAllows: true  // the shell asks the upstream's budget when it performs the back-off
        )
        guard case .retry(let delay) = decision else { return self.endCandidate() }
        self.state = .backingOff
        return Step(action: .backOff(delay, upstream: upstream, reason: failure.label))
    }

    private mutating func endCandidate() -> Step {
        if self.attempt > 0 {
            let model = self.configuration.candidates[self.candidateIndex].model
            self.tried.append("\(model) (\(self.attempt) attempt(s)): \(ForwardingErrors.describe(self.lastFailure))")
        }
        self.candidateIndex += 1
        return self.nextCandidate()
    }

    private mutating func nextCandidate() -> Step {
        guard self.candidateIndex < self.configuration.candidates.count else {
            self.state = .done
            return Step(
                action: .fail(
                    ForwardingErrors.final(
                        self.lastFailure,
                        breakerWait: self.breakerWait,
                        attempts: self.attempts,
                        tried: self.tried
                    )
                )
            )
        }
        self.attempt = 0
        self.state = .acquiring
        return Step(action: .acquire(self.configuration.candidates[self.candidateIndex]))
    }

    private mutating func deliver() -> Step {
        guard let head = self.head, let lease = self.lease else { return .none }
        self.state = .done
        let body = self.body
        self.body = ByteBuffer()
        return Step(
            settle: Settlement(verdict: Self.verdict(head), wasProbe: lease.isProbe, release: true),
            action: .deliver(head, body: body, served: self.served(lease))
        )
    }

    /// Sends the head of a relayed answer: from here on nothing is retried. The lease is held
    /// until the stream ends (least-loaded balancing counts streams in flight).
    private mutating func commit(chunk: ByteBuffer?, ends: Bool) -> Step {
        guard let head = self.head, let lease = self.lease else { return .none }
        self.state = ends ? .done : .relaying
        return Step(
            settle: Settlement(verdict: Self.verdict(head), wasProbe: lease.isProbe, release: ends),
            action: .commit(
                head,
                served: self.served(lease),
                isEventStream: self.configuration.answer == .eventStream,
                chunk: chunk,
                ends: ends
            )
        )
    }

    private mutating func endStream(failure: UpstreamError?) -> Step {
        self.state = .done
        // A stream cut after its head counts against the upstream; it is never a probe any more.
        return Step(
            settle: Settlement(verdict: failure == nil ? nil : .failure, wasProbe: false, release: true),
            failure: failure?.shortDescription,
            action: .endStream(failure: failure)
        )
    }

    private func served(_ lease: Lease) -> Served {
        let candidate = self.configuration.candidates[self.candidateIndex]
        return Served(
            model: self.configuration.answer == .passThrough ? "" : candidate.model,
            upstream: lease.upstream,
            fallbackFrom: self.candidateIndex > 0 ? self.configuration.candidates[0].model : nil
        )
    }
}
