import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1

/// Where a forwarded request's answer goes: the client connection. Event-loop confined.
protocol ClientResponseSink: AnyObject {
    var isWritable: Bool { get }
    func sendHead(status: HTTPResponseStatus, headers: HTTPHeaders, contentLength: Int?)
    func sendBody(_ buffer: ByteBuffer, flush: Bool)
    /// Ends the response (flushes). `abort` closes the connection instead of ending cleanly,
    /// for a relayed body that cannot be completed.
    func sendEnd(trailers: HTTPHeaders?, abort: Bool)
    func sendError(_ error: SidecarError, requestID: String)
}

/// One forwarded request on the client connection's event loop: the upstream calls with
/// breakers, retries and fallbacks, then the relay of the answer, with no task switches.
///
/// For each candidate in order: pick an upstream through the model's balancer (skipping open
/// breakers), send with a first-byte deadline, and on a retryable failure wait (backoff or
/// `Retry-After`) and try again while the policy, the retry budget and the request deadline
/// allow; then move to the next candidate. Nothing is retried once a byte of the answer was
/// sent to the client: whole answers are read inside the attempt, streams are held until their
/// first chunk.
final class ForwardExchange {
    private enum Phase {
        case idle
        case awaitingHead
        /// A retryable status: its (short) body is read for the error message.
        case readingFailedBody
        case readingWholeBody
        case awaitingFirstChunk
        case relaying
        case backingOff
        case done
    }

    /// Why the last attempt failed.
    private enum Failure {
        case error(UpstreamError)
        case status(HTTPResponseStatus, message: String, retryAfter: Duration?, upstream: String)
    }

    private let plan: ForwardPlan
    private let pipeline: ProxyPipeline
    private let pool: UpstreamConnectionPool
    private let sink: any ClientResponseSink
    private let eventLoop: any EventLoop

    private var phase = Phase.idle
    private var candidateIndex = 0
    private var attempt = 0
    private var attempts = 0
    private var generation = 0
    private var lastFailure: Failure?
    private var breakerWait: Duration?
    private var tried: [String] = []

    private var balancer: UpstreamBalancer?
    private var lease: UpstreamBalancer.Lease?
    private var budget: RetryBudget?
    private var call: UpstreamCall?
    /// The client connection's first-byte timer (see ``CoalescedDeadlineTimer``).
    private let headTimer: CoalescedDeadlineTimer
    private var backoffTimer: Scheduled<Void>?
    private var deadlineTimer: Scheduled<Void>?

    private var head: HTTPResponseHead?
    private var body = ByteBuffer()
    private var relay: StreamRelay?
    private var servedModel = ""
    private var servedUpstream = ""
    private var readingPaused = false
    private var attemptStartedAt = ContinuousClock.now

    private static let failedBodyLimit = 1 << 16

    init(
        plan: ForwardPlan,
        pipeline: ProxyPipeline,
        pool: UpstreamConnectionPool,
        sink: any ClientResponseSink,
        headTimer: CoalescedDeadlineTimer,
        eventLoop: any EventLoop
    ) {
        self.plan = plan
        self.pipeline = pipeline
        self.pool = pool
        self.sink = sink
        self.headTimer = headTimer
        self.eventLoop = eventLoop
    }

    private var configuration: SidecarConfiguration { self.pipeline.runtime.configuration }
    private var metrics: SidecarMetrics { self.pipeline.metrics }

    // MARK: Driving

    /// Until the answer is committed, the request deadline is enforced without a timer of its
    /// own: each attempt's head timer fires at the deadline at the latest, the retry policy never
    /// waits past it, and body chunks are checked against it. A relayed stream gets a timer.
    func start() {
        self.nextCandidate()
    }

    /// The client went away: stop everything, record nothing against the upstream.
    func cancel() {
        guard self.phase != .done else { return }
        let wasAttempting = self.isAttemptInFlight
        self.call?.cancel()
        self.call = nil
        if wasAttempting, let lease = self.lease {
            lease.breaker?.recordIgnored(wasProbe: lease.isProbe)
        }
        self.complete()
        self.pipeline.finish(
            self.plan.request,
            model: self.servedModel,
            upstream: self.servedUpstream,
            status: 499,
            cost: nil,
            streamed: self.relay != nil
        )
    }

    /// The client connection can take more bytes again (or not).
    func writabilityChanged(_ writable: Bool) {
        guard self.phase == .relaying else { return }
        self.setReadingPaused(!writable)
    }

    private var isAttemptInFlight: Bool {
        switch self.phase {
        case .awaitingHead, .readingFailedBody, .readingWholeBody, .awaitingFirstChunk: return true
        case .idle, .relaying, .backingOff, .done: return false
        }
    }

    private func nextCandidate() {
        while self.candidateIndex < self.plan.candidates.count {
            let candidate = self.plan.candidates[self.candidateIndex]
            if let balancer = self.pipeline.pools.balancer(model: candidate.model, fallbackUpstream: candidate.upstream)
            {
                self.balancer = balancer
                self.attempt = 0
                self.startAttempt()
                return
            }
            self.candidateIndex += 1
        }
        self.failFinally()
    }

    private func endCandidate() {
        if self.attempt > 0 {
            let candidate = self.plan.candidates[self.candidateIndex]
            self.tried.append("\(candidate.model) (\(self.attempt) attempt(s)): \(Self.describe(self.lastFailure))")
        }
        self.candidateIndex += 1
        self.nextCandidate()
    }

    private func startAttempt() {
        guard let balancer = self.balancer else { return self.endCandidate() }
        let lease: UpstreamBalancer.Lease
        switch balancer.select() {
        case .leased(let leased):
            lease = leased
        case .unavailable(let wait):
            self.breakerWait = [self.breakerWait, wait].compactMap { $0 }.min()
            return self.endCandidate()
        }
        self.lease = lease
        self.attempt += 1
        self.attempts += 1
        self.generation += 1
        let budget = self.pipeline.pools.budgets[lease.id]
        self.budget = budget
        if self.attempt == 1 { budget?.recordRequest() }
        let candidate = self.plan.candidates[self.candidateIndex]
        let request: UpstreamWireRequest
        do {
            request = try self.pipeline.wireRequest(self.plan, model: candidate.model, upstream: lease.id)
        } catch {
            self.releaseLease()
            return self.fail(Self.sidecarError(error))
        }
        self.head = nil
        self.body.clear()
        self.phase = .awaitingHead
        self.attemptStartedAt = .now
        let headDeadline = min(self.plan.deadline, .now + self.configuration.timeouts.firstByte)
        let generation = self.generation
        self.headTimer.set(self.eventLoop.now + Self.timeAmount(until: headDeadline), owner: self) { [self] in
            guard self.generation == generation, self.phase == .awaitingHead else { return }
            self.call?.cancel()
            self.call = nil
            self.attemptFailed(
                UpstreamError(
                    .deadlineExceeded,
                    upstream: lease.id,
                    detail: "no response before the first-byte deadline"
                )
            )
        }
        let delegate = AttemptDelegate(exchange: self, generation: generation)
        let call = self.pool.execute(request, delegate: delegate)
        if self.generation == generation && self.isAttemptInFlight {
            self.call = call
        }
    }

    // MARK: Upstream events (current attempt only)

    fileprivate func didReceiveHead(_ head: HTTPResponseHead, generation: Int) {
        guard generation == self.generation, self.phase == .awaitingHead else { return }
        self.headTimer.clear(owner: self)
        self.head = head
        let code = Int(head.status.code)
        if let lease = self.lease {
            self.metrics.recordUpstreamHead(upstream: lease.id, status: code, since: self.attemptStartedAt)
        }
        if self.plan.retryStatuses
            && self.pipeline.runtime.configuration.resilience.retry.retryableStatuses.contains(code)
        {
            self.phase = .readingFailedBody
            return
        }
        let successful = (200..<300).contains(code)
        switch self.plan.kind {
        case .generate(let completion):
            if completion.streaming && successful && Self.isEventStream(head.headers) {
                self.relay = StreamRelay(dropUsageChunk: self.dropsUsageChunk)
                self.phase = .awaitingFirstChunk
            } else {
                self.phase = .readingWholeBody
            }
        case .embed:
            self.phase = .readingWholeBody
        case .passThrough:
            if successful {
                self.phase = .awaitingFirstChunk
            } else {
                self.commitHead()
            }
        }
    }

    fileprivate func didReceiveBody(_ buffer: ByteBuffer, generation: Int) {
        guard generation == self.generation else { return }
        switch self.phase {
        case .readingFailedBody:
            if ContinuousClock.now >= self.plan.deadline { return self.deadlineReached() }
            var buffer = buffer
            if self.body.readableBytes < Self.failedBodyLimit {
                self.body.writeBuffer(&buffer)
            }
        case .readingWholeBody:
            if ContinuousClock.now >= self.plan.deadline { return self.deadlineReached() }
            var buffer = buffer
            let limit = self.configuration.server.maxResponseBytes
            guard self.body.readableBytes + buffer.readableBytes <= limit else {
                self.call?.cancel()
                self.call = nil
                if let lease = self.lease { lease.breaker?.recordIgnored(wasProbe: lease.isProbe) }
                let error = UpstreamError(
                    .responseTooLarge,
                    upstream: self.lease?.id ?? "",
                    detail: "response body over \(limit) bytes"
                )
                self.metrics.recordUpstreamFailure(upstream: error.upstream, reason: error.shortDescription)
                return self.fail(.upstream(error))
            }
            if self.body.readableBytes == 0 {
                self.body = buffer  // the common single-read answer: no copy
            } else {
                self.body.writeBuffer(&buffer)
            }
        case .awaitingFirstChunk:
            self.commitHead()
            self.relayChunk(buffer)
        case .relaying:
            self.relayChunk(buffer)
        case .idle, .awaitingHead, .backingOff, .done:
            return
        }
    }

    fileprivate func didFinish(generation: Int) {
        guard generation == self.generation else { return }
        self.call = nil
        switch self.phase {
        case .readingFailedBody:
            self.failedStatusRead()
        case .readingWholeBody:
            self.commitWhole()
        case .awaitingFirstChunk:
            self.commitHead()
            self.endRelay(failure: nil)
        case .relaying:
            self.endRelay(failure: nil)
        case .idle, .awaitingHead, .backingOff, .done:
            return
        }
    }

    fileprivate func didFail(_ error: UpstreamError, generation: Int) {
        guard generation == self.generation else { return }
        self.call = nil
        switch self.phase {
        case .readingFailedBody:
            // The status already says what failed; a cut error body does not change that.
            self.failedStatusRead()
        case .awaitingHead, .readingWholeBody, .awaitingFirstChunk:
            self.attemptFailed(error)
        case .relaying:
            self.endRelay(failure: error)
        case .idle, .backingOff, .done:
            return
        }
    }

    // MARK: Attempt outcomes

    private func failedStatusRead() {
        guard let head = self.head, let lease = self.lease else { return }
        let code = Int(head.status.code)
        let retryAfter = Self.retryAfter(head.headers)
        if code == 429 {
            lease.breaker?.recordIgnored(wasProbe: lease.isProbe)
        } else {
            lease.breaker?.recordFailure(wasProbe: lease.isProbe)
        }
        self.releaseLease()
        self.lastFailure = .status(
            head.status,
            message: Self.errorMessage(self.body),
            retryAfter: retryAfter,
            upstream: lease.id
        )
        let failure = RetryableFailure.status(code)
        self.metrics.recordUpstreamFailure(upstream: lease.id, reason: "status_\(code)")
        self.retryOrMoveOn(failure, retryAfter: retryAfter, upstream: lease.id)
    }

    private func attemptFailed(_ error: UpstreamError) {
        guard let lease = self.lease else { return }
        self.headTimer.clear(owner: self)
        lease.breaker?.recordFailure(wasProbe: lease.isProbe)
        self.releaseLease()
        self.metrics.recordUpstreamFailure(upstream: lease.id, reason: error.shortDescription)
        self.pipeline.logger.debug(
            "upstream attempt failed",
            metadata: [
                "request.id": "\(self.plan.request.requestID)", "upstream.name": "\(lease.id)",
                "attempt": "\(self.attempt)", "error": "\(error)",
            ]
        )
        if ContinuousClock.now >= self.plan.deadline {
            return self.fail(
                .upstream(UpstreamError(.deadlineExceeded, upstream: lease.id, detail: "request deadline exceeded"))
            )
        }
        self.lastFailure = .error(error)
        let failure: RetryableFailure =
            error.isConnectFailure ? .connectFailed : (error.code == .other ? .other : .timedOutBeforeFirstByte)
        self.retryOrMoveOn(failure, retryAfter: nil, upstream: lease.id)
    }

    private func retryOrMoveOn(_ failure: RetryableFailure, retryAfter: Duration?, upstream: String) {
        let policy = self.configuration.resilience.retry
        let budget = self.budget
        let decision = policy.decision(
            attempt: self.attempt,
            failure: failure,
            retryAfter: retryAfter,
            timeLeft: ContinuousClock.now.duration(to: self.plan.deadline),
            jitter: Double.random(in: 0..<1),
            budgetAllows: budget?.canRetry() ?? true
        )
        guard case .retry(let delay) = decision else {
            self.phase = .idle
            return self.endCandidate()
        }
        budget?.recordRetry()
        self.metrics.recordRetry(upstream: upstream, reason: failure.label)
        self.phase = .backingOff
        self.backoffTimer = self.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay.saturatingNanoseconds))
        { [self] in
            guard self.phase == .backingOff else { return }
            self.backoffTimer = nil
            self.startAttempt()
        }
    }

    /// The attempt produced an answer the client gets: record it against the breaker.
    private func recordServed() {
        guard let lease = self.lease, let head = self.head else { return }
        let code = Int(head.status.code)
        if (200..<400).contains(code) {
            lease.breaker?.recordSuccess(wasProbe: lease.isProbe)
        } else {
            lease.breaker?.recordIgnored(wasProbe: lease.isProbe)
        }
        let candidate = self.plan.candidates[self.candidateIndex]
        self.servedModel = self.plan.servedModel(candidate)
        self.servedUpstream = lease.id
        if self.candidateIndex > 0 {
            self.metrics.recordFallback(from: self.plan.candidates[0].model, to: candidate.model)
        }
    }

    private func headers(for head: HTTPResponseHead) -> HTTPHeaders {
        self.pipeline.clientHeaders(
            self.plan,
            upstreamHeaders: head.headers,
            model: self.servedModel,
            upstream: self.servedUpstream,
            usedFallback: self.candidateIndex > 0
        )
    }

    private func commitWhole() {
        guard let head = self.head else { return }
        self.recordServed()
        self.releaseLease()
        var headers = self.headers(for: head)
        var cost: CostQuote?
        switch self.plan.kind {
        case .generate, .embed:
            let value = self.pipeline.cost(ofWhole: self.body, status: head.status, model: self.servedModel)
            headers.add(name: SidecarHeaders.queryCost.rawName, value: value.header)
            cost = value
        case .passThrough:
            break
        }
        let body = self.body
        self.body = ByteBuffer()
        self.complete()
        self.sink.sendHead(status: head.status, headers: headers, contentLength: body.readableBytes)
        if body.readableBytes > 0 { self.sink.sendBody(body, flush: false) }
        self.sink.sendEnd(trailers: nil, abort: false)
        self.pipeline.finish(
            self.plan.request,
            model: self.servedModel,
            upstream: self.servedUpstream,
            status: Int(head.status.code),
            cost: cost,
            streamed: false
        )
    }

    /// Sends the head of a relayed (streamed) answer; from here on nothing is retried.
    private func commitHead() {
        guard let head = self.head else { return }
        self.recordServed()
        self.phase = .relaying
        self.deadlineTimer = self.eventLoop.assumeIsolated().scheduleTask(
            in: Self.timeAmount(until: self.plan.deadline)
        ) { [self] in
            self.deadlineReached()
        }
        var headers = self.headers(for: head)
        if self.relay != nil {
            headers.add(name: SidecarHeaders.trailer.rawName, value: SidecarHeaders.queryCost.rawName)
            if !headers.contains(name: "cache-control") { headers.add(name: "Cache-Control", value: "no-cache") }
        }
        let contentLength = self.relay == nil ? head.headers.first(name: "content-length").flatMap { Int($0) } : nil
        self.sink.sendHead(status: head.status, headers: headers, contentLength: contentLength)
    }

    private func relayChunk(_ buffer: ByteBuffer) {
        if self.relay != nil {
            let out = self.relay?.feed(buffer) ?? ByteBuffer()
            if out.readableBytes > 0 { self.sink.sendBody(out, flush: true) }
        } else {
            self.sink.sendBody(buffer, flush: true)
        }
        if !self.sink.isWritable { self.setReadingPaused(true) }
    }

    private func endRelay(failure: UpstreamError?) {
        guard let head = self.head else { return }
        self.releaseLease()
        let status = Int(head.status.code)
        guard var relay = self.relay else {
            // A pass-through body: a failure can only be signalled by not ending it cleanly.
            self.complete()
            if let failure { self.recordMidStreamFailure(failure) }
            self.sink.sendEnd(trailers: nil, abort: failure != nil)
            self.pipeline.finish(
                self.plan.request,
                model: self.servedModel,
                upstream: self.servedUpstream,
                status: status,
                cost: nil,
                streamed: true
            )
            return
        }
        if let rest = relay.finish() { self.sink.sendBody(rest, flush: false) }
        if let failure {
            self.recordMidStreamFailure(failure)
            if !relay.sawDone {
                self.sink.sendBody(
                    StreamRelay.errorEvent(
                        message: "Upstream \"\(failure.upstream)\" failed mid-stream: \(failure.detail)",
                        code: "upstream_\(failure.shortDescription)"
                    ),
                    flush: false
                )
            }
        }
        self.relay = relay
        let cost = relay.usage.map { self.pipeline.price($0, model: self.servedModel) } ?? .zero
        self.complete()
        self.sink.sendEnd(trailers: HTTPHeaders([(SidecarHeaders.queryCost.rawName, cost.header)]), abort: false)
        self.pipeline.finish(
            self.plan.request,
            model: self.servedModel,
            upstream: self.servedUpstream,
            status: status,
            cost: cost,
            streamed: true
        )
    }

    private func recordMidStreamFailure(_ failure: UpstreamError) {
        self.pipeline.pools.breakers[failure.upstream]?.recordFailure(wasProbe: false)
        self.metrics.recordUpstreamFailure(upstream: failure.upstream, reason: failure.shortDescription)
        self.pipeline.logger.warning(
            "upstream failed mid-stream",
            metadata: ["request.id": "\(self.plan.request.requestID)", "error": "\(failure)"]
        )
    }

    private func deadlineReached() {
        self.deadlineTimer = nil
        let upstream = self.lease?.id ?? self.plan.candidates.first?.upstream ?? ""
        let error = UpstreamError(.deadlineExceeded, upstream: upstream, detail: "request deadline exceeded")
        switch self.phase {
        case .awaitingHead, .readingFailedBody, .readingWholeBody, .awaitingFirstChunk:
            self.call?.cancel()
            self.call = nil
            self.attemptFailed(error)
        case .backingOff:
            self.fail(.upstream(error))
        case .relaying:
            self.call?.cancel()
            self.call = nil
            self.endRelay(failure: error)
        case .idle, .done:
            return
        }
    }

    // MARK: Ending

    private func failFinally() {
        let error = Self.finalError(self.lastFailure, breakerWait: self.breakerWait, attempts: self.attempts)
        guard self.tried.count > 1 else { return self.fail(error) }
        self.fail(
            SidecarError(
                status: error.status,
                type: error.type,
                code: error.code,
                message: error.message + (error.message.hasSuffix(".") ? " " : ". ") + "Tried in order: "
                    + self.tried.joined(separator: "; ") + ".",
                retryAfter: error.retryAfter
            )
        )
    }

    private func fail(_ error: SidecarError) {
        guard self.phase != .done else { return }
        self.call?.cancel()
        self.call = nil
        self.releaseLease()
        self.complete()
        self.sink.sendError(error, requestID: self.plan.request.requestID)
        self.pipeline.finish(
            self.plan.request,
            model: self.servedModel,
            upstream: self.servedUpstream,
            status: error.status.code,
            cost: nil,
            streamed: false
        )
    }

    private func complete() {
        self.phase = .done
        self.headTimer.clear(owner: self)
        self.backoffTimer?.cancel()
        self.backoffTimer = nil
        self.deadlineTimer?.cancel()
        self.deadlineTimer = nil
        self.releaseLease()
    }

    private func releaseLease() {
        if let lease = self.lease, let balancer = self.balancer {
            balancer.release(lease)
        }
        self.lease = nil
    }

    private func setReadingPaused(_ paused: Bool) {
        guard paused != self.readingPaused else { return }
        self.readingPaused = paused
        self.call?.setReadingPaused(paused)
    }

    private var dropsUsageChunk: Bool {
        if case .generate(let completion) = self.plan.kind { return !completion.clientAskedForUsage }
        return false
    }

    // MARK: Helpers

    static func timeAmount(until instant: ContinuousClock.Instant) -> TimeAmount {
        let remaining = ContinuousClock.now.duration(to: instant)
        return remaining > .zero ? .nanoseconds(remaining.saturatingNanoseconds) : .zero
    }

    static func isEventStream(_ headers: HTTPHeaders) -> Bool {
        headers.first(name: "content-type")?.lowercased().hasPrefix("text/event-stream") ?? false
    }

    static func sidecarError(_ error: any Error) -> SidecarError {
        SidecarError.mapped(error) ?? .internalError("The sidecar failed to handle the request: \(error)")
    }

    private static func finalError(_ failure: Failure?, breakerWait: Duration?, attempts: Int) -> SidecarError {
        switch failure {
        case .error(let error)?:
            return .upstream(error, attempts: attempts)
        case .status(let status, let message, let retryAfter, let upstream)? where status.code == 429:
            return SidecarError(
                status: .tooManyRequests,
                type: "rate_limit_error",
                code: "upstream_rate_limited",
                message: "Upstream \"\(upstream)\" is rate limiting after \(attempts) attempt(s): \(message)",
                retryAfter: retryAfter
            )
        case .status(let status, let message, _, let upstream)?:
            return SidecarError(
                status: .badGateway,
                type: "upstream_error",
                code: "upstream_status_\(status.code)",
                message: "Upstream \"\(upstream)\" answered \(status.code) after \(attempts) attempt(s): \(message)"
            )
        case nil:
            return SidecarError(
                status: .serviceUnavailable,
                type: "upstream_error",
                code: "upstreams_unavailable",
                message: "Every upstream for this request has its circuit breaker open; try again later.",
                retryAfter: breakerWait
            )
        }
    }

    private static func describe(_ failure: Failure?) -> String {
        switch failure {
        case .error(let error)?: return "\(error.upstream) \(error.shortDescription)"
        case .status(let status, _, _, let upstream)?: return "\(upstream) answered \(status.code)"
        case nil: return "circuit breaker open"
        }
    }

    /// `retry-after-ms` (OpenAI's, milliseconds) first, else `Retry-After` (seconds or date).
    static func retryAfter(_ headers: HTTPHeaders) -> Duration? {
        if let value = headers.first(name: "retry-after-ms"), let duration = RetryAfter.parseMilliseconds(value) {
            return duration
        }
        return headers.first(name: "retry-after").flatMap { RetryAfter.parse($0, now: Date()) }
    }

    private static func errorMessage(_ body: ByteBuffer) -> String {
        guard body.readableBytes > 0 else { return "" }
        guard let error = try? JSONDecoder().decode(OpenAIErrorBody.self, from: Data(body.readableBytesView)) else {
            return String(buffer: body).prefix(200).description
        }
        return error.error.message
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
