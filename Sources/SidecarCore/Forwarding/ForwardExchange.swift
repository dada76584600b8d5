import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SidecarHTTP
import SidecarPolicy

/// Where the forward phase hands its answer: the request's lifecycle. Event-loop confined.
protocol ForwardOutput: AnyObject {
    /// A whole (non-streamed) answer.
    func forwardDelivered(_ head: HTTPResponseHead, body: ByteBuffer, served: ForwardingStateMachine.Served)
    /// The head of a relayed answer; chunks follow, then ``forwardEnded(failure:)``.
    func forwardCommitted(_ head: HTTPResponseHead, served: ForwardingStateMachine.Served, isEventStream: Bool)
    func forwardRelayed(_ chunk: ByteBuffer)
    func forwardEnded(failure: UpstreamError?)
    /// No answer: every candidate failed, or the request was refused.
    func forwardFailed(_ error: SidecarError)
}

/// The forward phase's NIO shell: performs what ``ForwardingStateMachine`` decides on the client
/// connection's event loop (leases from balancers, breaker verdicts, retry budgets, timers,
/// upstream calls, metrics) and feeds it what happens. It makes no decision of its own.
final class ForwardExchange {
    private var machine: ForwardingStateMachine
    private let outgoing: OutgoingRequest
    private let environment: ForwardEnvironment
    /// The client connection's first-byte timer (see ``CoalescedDeadlineTimer``).
    private let headTimer: CoalescedDeadlineTimer
    private var output: (any ForwardOutput)?

    private var call: (any UpstreamCallHandle)?
    private var lease: UpstreamBalancer.Lease?
    private var balancer: UpstreamBalancer?
    private var generation = 0
    private var attemptStartedAt = ContinuousClock.now
    private var backoffTimer: Scheduled<Void>?
    private var deadlineTimer: Scheduled<Void>?
    private var readingPaused = false
    /// The upstream whose `max_concurrent` permit this exchange holds, if any.
    private var permit: String?
    /// Waiting in line for a permit: the upstream, the ticket and the request to send then.
    private var waiting: (upstream: String, ticket: UInt64, request: UpstreamWireRequest)?

    init(
        _ configuration: ForwardingConfiguration,
        outgoing: OutgoingRequest,
        environment: ForwardEnvironment,
        headTimer: CoalescedDeadlineTimer,
        output: any ForwardOutput
    ) {
        self.machine = ForwardingStateMachine(
            configuration,
            jitter: JitterSource(seed: UInt64(bitPattern: Int64(outgoing.request.requestID.hashValue)))
        )
        self.outgoing = outgoing
        self.environment = environment
        self.headTimer = headTimer
        self.output = output
    }

    /// Until the answer is committed, the request deadline is enforced without a timer of its
    /// own: each attempt's head timer fires at the deadline at the latest, the retry policy never
    /// waits past it, and body chunks are checked against it. A relayed stream gets a timer.
    func start() {
        self.perform(self.machine.start())
    }

    /// The client went away: stop everything, record nothing against the upstream.
    func cancel() {
        self.perform(self.machine.clientGone())
    }

    /// Back-pressure from the client connection: stop (or resume) reading a relayed answer.
    func setReadingPaused(_ paused: Bool) {
        guard self.machine.isRelaying, paused != self.readingPaused else { return }
        self.readingPaused = paused
        self.call?.setReadingPaused(paused)
    }

    // MARK: Upstream events (current attempt only)

    fileprivate func didReceiveHead(_ head: HTTPResponseHead, generation: Int) {
        guard generation == self.generation else { return }
        self.headTimer.clear(owner: self)
        if let lease = self.lease {
            self.metrics.recordUpstreamHead(
                upstream: lease.id,
                status: Int(head.status.code),
                since: self.attemptStartedAt
            )
        }
        // Only failed answers can carry a wait worth reading.
        let retryAfter = head.status.code >= 400 ? ForwardingErrors.retryAfter(head.headers, now: Date()) : nil
        self.perform(self.machine.headReceived(head, retryAfter: retryAfter))
    }

    fileprivate func didReceiveBody(_ buffer: ByteBuffer, generation: Int) {
        guard generation == self.generation else { return }
        self.perform(self.machine.bodyReceived(buffer, now: .now))
    }

    fileprivate func didFinish(generation: Int) {
        guard generation == self.generation else { return }
        self.call = nil
        self.perform(self.machine.finished(now: .now))
    }

    fileprivate func didFail(_ error: UpstreamError, generation: Int) {
        guard generation == self.generation else { return }
        self.call = nil
        self.perform(self.machine.failed(error, now: .now))
    }

    // MARK: Performing steps

    private func perform(_ step: ForwardingStateMachine.Step) {
        if let failure = step.failure, let upstream = self.lease?.id ?? self.machine.upstream {
            self.metrics.recordUpstreamFailure(upstream: upstream, reason: failure)
            self.logger.debug(
                "upstream attempt failed",
                metadata: [
                    "request.id": "\(self.outgoing.request.requestID)", "upstream.name": "\(upstream)",
                    "reason": "\(failure)",
                ]
            )
        }
        if let settle = step.settle { self.settle(settle) }
        switch step.action {
        case .none:
            return
        case .acquire(let candidate):
            self.acquire(candidate)
        case .send(let attempt):
            self.send(attempt)
        case .backOff(let delay, let upstream, let reason):
            self.backOff(delay, upstream: upstream, reason: reason)
        case .deliver(let head, let body, let served):
            self.recordFallback(served)
            self.finish()?.forwardDelivered(head, body: body, served: served)
        case .commit(let head, let served, let isEventStream, let chunk, let ends):
            self.recordFallback(served)
            if !ends {
                self.deadlineTimer = self.eventLoop.assumeIsolated().scheduleTask(
                    in: Self.timeAmount(until: self.outgoing.deadline)
                ) { [self] in
                    self.deadlineTimer = nil
                    self.perform(self.machine.deadlinePassed(now: .now))
                }
            }
            self.output?.forwardCommitted(head, served: served, isEventStream: isEventStream)
            if let chunk { self.output?.forwardRelayed(chunk) }
            if ends { self.finish()?.forwardEnded(failure: nil) }
        case .relay(let chunk):
            self.output?.forwardRelayed(chunk)
        case .endStream(let failure):
            if let failure {
                self.logger.warning(
                    "upstream failed mid-stream",
                    metadata: ["request.id": "\(self.outgoing.request.requestID)", "error": "\(failure)"]
                )
            }
            self.finish()?.forwardEnded(failure: failure)
        case .fail(let error):
            self.finish()?.forwardFailed(error)
        case .abandon:
            _ = self.finish()
        }
    }

    private func acquire(_ candidate: UpstreamCandidate) {
        guard
            let balancer = self.resilience.balancer(
                model: candidate.model,
                fallbackUpstream: candidate.upstream,
                traffic: self.outgoing.traffic
            )
        else {
            return self.perform(self.machine.unavailable(retryAfter: nil))
        }
        switch balancer.select() {
        case .leased(let lease):
            self.balancer = balancer
            self.lease = lease
            let passing = self.environment.builder.directory.passingClientAuthorization
            let clientCredential = !passing.isEmpty && passing.contains(lease.id)
            self.perform(
                self.machine.leased(
                    upstream: lease.id,
                    isProbe: lease.isProbe,
                    clientCredential: clientCredential,
                    now: .now
                )
            )
        case .unavailable(let wait):
            self.perform(self.machine.unavailable(retryAfter: wait))
        }
    }

    private func send(_ attempt: ForwardingStateMachine.Attempt) {
        if attempt.number == 1 { self.resilience.budgets[attempt.upstream]?.recordRequest() }
        let request: UpstreamWireRequest
        do {
            request = try self.environment.builder.request(
                for: self.outgoing,
                model: attempt.model,
                upstream: attempt.upstream
            )
        } catch {
            return self.perform(self.machine.requestNotBuilt(SidecarError.mapped(error) ?? .internalError("\(error)")))
        }
        self.generation += 1
        let generation = self.generation
        self.attemptStartedAt = .now
        self.headTimer.set(self.eventLoop.now + Self.timeAmount(until: attempt.headDeadline), owner: self) { [self] in
            guard self.generation == generation else { return }
            self.perform(self.machine.headTimedOut(now: .now))
        }
        if let limiter = self.environment.limiter, limiter.isLimited(attempt.upstream) {
            let eventLoop = self.eventLoop
            let exchange = NIOLoopBound(self, eventLoop: eventLoop)
            let upstream = attempt.upstream
            let waiter: ConcurrencyLimiter.Waiter = {
                eventLoop.execute { exchange.value.permitGranted(upstream, generation: generation) }
            }
            switch limiter.acquire(attempt.upstream, waiter: waiter) {
            case .granted:
                self.permit = attempt.upstream
            case .queued(let ticket):
                // In line: the first-byte timer already runs, so a wait that long ends like a hang.
                self.waiting = (attempt.upstream, ticket, request)
                return
            }
        }
        self.startCall(request, generation: generation)
    }

    private func startCall(_ request: UpstreamWireRequest, generation: Int) {
        let call = self.environment.transport.send(
            request,
            delegate: AttemptDelegate(exchange: self, generation: generation)
        )
        if self.generation == generation && self.machine.isAttemptInFlight {
            self.call = call
        }
    }

    /// A permit came free: send the attempt waiting in line, or give it back if that attempt is over.
    private func permitGranted(_ upstream: String, generation: Int) {
        guard let waiting = self.waiting, generation == self.generation, self.machine.isAttemptInFlight else {
            self.environment.limiter?.release(upstream)
            return
        }
        self.waiting = nil
        self.permit = waiting.upstream
        self.startCall(waiting.request, generation: generation)
    }

    /// Gives back the permit held (or leaves the line) when the attempt ends.
    private func releasePermit() {
        guard let limiter = self.environment.limiter else { return }
        if let waiting = self.waiting {
            self.waiting = nil
            // Already handed over: the grant then finds nothing waiting and gives the permit back.
            _ = limiter.cancel(waiting.upstream, ticket: waiting.ticket)
        }
        if let permit = self.permit {
            self.permit = nil
            limiter.release(permit)
        }
    }

    private func backOff(_ delay: Duration, upstream: String, reason: String) {
        let budget = self.resilience.budgets[upstream]
        guard budget?.canRetry() ?? true else {
            return self.perform(self.machine.retryBudgetExhausted())
        }
        budget?.recordRetry()
        self.metrics.recordRetry(upstream: upstream, reason: reason)
        self.backoffTimer = self.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay.saturatingNanoseconds))
        {
            [self] in
            self.backoffTimer = nil
            self.perform(self.machine.backoffElapsed())
        }
    }

    /// Records the verdict on the leased upstream's breaker and, when the attempt is over,
    /// stops its call and gives the lease back.
    private func settle(_ settle: ForwardingStateMachine.Settlement) {
        guard let lease = self.lease else { return }
        switch settle.verdict {
        case .success?: lease.breaker?.recordSuccess(wasProbe: settle.wasProbe)
        case .failure?: lease.breaker?.recordFailure(wasProbe: settle.wasProbe)
        case .ignored?: lease.breaker?.recordIgnored(wasProbe: settle.wasProbe)
        case nil: break
        }
        guard settle.release else { return }
        self.call?.cancel()
        self.call = nil
        self.releasePermit()
        self.headTimer.clear(owner: self)
        self.balancer?.release(lease)
        self.lease = nil
    }

    private func recordFallback(_ served: ForwardingStateMachine.Served) {
        if let from = served.fallbackFrom { self.metrics.recordFallback(from: from, to: served.model) }
    }

    /// Stops every timer and hands back the output for its last call (once).
    private func finish() -> (any ForwardOutput)? {
        self.headTimer.clear(owner: self)
        self.backoffTimer?.cancel()
        self.backoffTimer = nil
        self.deadlineTimer?.cancel()
        self.deadlineTimer = nil
        self.call?.cancel()
        self.call = nil
        self.releasePermit()
        if let lease = self.lease {
            self.balancer?.release(lease)
            self.lease = nil
        }
        let output = self.output
        self.output = nil
        return output
    }

    private var resilience: ResilienceRegistry { self.environment.resilience }
    private var metrics: SidecarMetrics { self.environment.metrics }
    private var logger: Logger { self.environment.logger }
    private var eventLoop: any EventLoop { self.environment.eventLoop }

    static func timeAmount(until instant: ContinuousClock.Instant) -> TimeAmount {
        let remaining = ContinuousClock.now.duration(to: instant)
        return remaining > .zero ? .nanoseconds(remaining.saturatingNanoseconds) : .zero
    }
}

/// What every forward phase of a runtime shares on one event loop: built once per loop, so
/// that a request takes one reference to it.
final class ForwardEnvironment {
    let builder: UpstreamRequestBuilder
    let transport: any UpstreamTransport
    let resilience: ResilienceRegistry
    /// `max_concurrent` per upstream; `nil` when no upstream has a limit.
    let limiter: ConcurrencyLimiter?
    let metrics: SidecarMetrics
    let logger: Logger
    let eventLoop: any EventLoop

    init(
        builder: UpstreamRequestBuilder,
        transport: any UpstreamTransport,
        resilience: ResilienceRegistry,
        limiter: ConcurrencyLimiter?,
        metrics: SidecarMetrics,
        logger: Logger,
        eventLoop: any EventLoop
    ) {
        self.builder = builder
        self.transport = transport
        self.resilience = resilience
        self.limiter = limiter
        self.metrics = metrics
        self.logger = logger
        self.eventLoop = eventLoop
    }
}

/// Routes one attempt's upstream events to the exchange; events of an abandoned attempt
/// (a newer generation) are dropped there.
private final class AttemptDelegate: UpstreamResponseDelegate {
    private let exchange: ForwardExchange
    private let generation: Int

    init(exchange: ForwardExchange, generation: Int) {
        self.exchange = exchange
        self.generation = generation
    }

    func upstreamDidReceiveHead(_ head: HTTPResponseHead) {
        self.exchange.didReceiveHead(head, generation: self.generation)
    }

    func upstreamDidReceiveBody(_ buffer: ByteBuffer) {
        self.exchange.didReceiveBody(buffer, generation: self.generation)
    }

    func upstreamDidFinish(trailers: HTTPHeaders?) {
        self.exchange.didFinish(generation: self.generation)
    }

    func upstreamDidFail(_ error: UpstreamError) {
        self.exchange.didFail(error, generation: self.generation)
    }
}
