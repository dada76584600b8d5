import Foundation
import HTTPTypes
import Logging
import NIOCore
import Synchronization

/// One model to try, and the upstream to use when the model is not configured (pinned ids).
struct UpstreamCandidate: Sendable, Equatable {
    var model: String
    var upstream: String
}

/// What served a request once the executor is done.
struct UpstreamExecution: Sendable {
    /// The response; its body releases the balancer lease when it is finished or dropped.
    var response: UpstreamResponse
    var model: String
    var upstream: String
    var attempts: Int
    /// A candidate after the first served the request.
    var usedFallback: Bool
}

/// Calls upstreams with breakers, retries and fallbacks, and never retries once a byte of the
/// answer could have reached the client (it returns at the response head, or after reading a
/// whole non-streamed body).
///
/// For each candidate in order: pick an upstream through the model's balancer (skipping open
/// breakers), send with a first-byte deadline, and on a retryable failure wait
/// (backoff or `Retry-After`) and try again while the policy, the retry budget and the
/// request deadline allow; then move to the next candidate.
struct UpstreamExecutor: Sendable {
    let client: any UpstreamClient
    let pools: UpstreamPools
    let policy: RetryPolicy
    let timeouts: TimeoutConfiguration
    let metrics: SidecarMetrics
    let logger: Logger

    /// Why the last attempt failed.
    private enum Failure {
        case error(UpstreamError)
        case status(HTTPResponse.Status, message: String, retryAfter: Duration?, upstream: String)
    }

    /// - Parameters:
    ///   - bufferLimit: read the whole body inside the attempt (non-streamed answers), so a body
    ///     cut short is retried too; `nil` returns at the head (streams).
    ///   - retryStatuses: retry 429/5xx answers (off for non-idempotent pass-through calls).
    ///   - makeRequest: builds the request for a model on an upstream.
    func execute(
        candidates: [UpstreamCandidate],
        deadline: ContinuousClock.Instant,
        bufferLimit: Int?,
        retryStatuses: Bool,
        requestID: String,
        makeRequest: (_ model: String, _ upstream: String) throws -> UpstreamRequest
    ) async throws -> UpstreamExecution {
        var lastFailure: Failure?
        var breakerWait: Duration?
        var attempts = 0
        /// One line per candidate that was attempted and failed, for the final message.
        var tried: [String] = []
        for (index, candidate) in candidates.enumerated() {
            guard let balancer = self.pools.balancer(model: candidate.model, fallbackUpstream: candidate.upstream)
            else {
                continue
            }
            var attempt = 0
            attemptLoop: while true {
                let lease: UpstreamBalancer.Lease
                switch balancer.select() {
                case .leased(let leased): lease = leased
                case .unavailable(let wait):
                    breakerWait = [breakerWait, wait].compactMap { $0 }.min()
                    break attemptLoop
                }
                attempt += 1
                attempts += 1
                let budget = self.pools.budgets[lease.id]
                if attempt == 1 { budget?.recordRequest() }
                let leaseGuard = LeaseGuard(balancer: balancer, lease: lease)
                do {
                    let request = try makeRequest(candidate.model, lease.id)
                    let headDeadline = min(deadline, .now + self.timeouts.firstByte)
                    var response = try await self.client.send(request, deadline: headDeadline)
                    let code = response.status.code
                    if retryStatuses && self.policy.retryableStatuses.contains(code) {
                        let body = try? await response.body.collect(upTo: 1 << 16, upstream: lease.id)
                        let retryAfter = Self.retryAfter(response.headers)
                        if code == 429 {
                            lease.breaker?.recordIgnored(wasProbe: lease.isProbe)
                        } else {
                            lease.breaker?.recordFailure(wasProbe: lease.isProbe)
                        }
                        lastFailure = .status(
                            response.status,
                            message: Self.errorMessage(body),
                            retryAfter: retryAfter,
                            upstream: lease.id
                        )
                        let failure = RetryableFailure.status(code)
                        self.metrics.recordUpstreamFailure(upstream: lease.id, reason: "status_\(code)")
                        if case .retry(let delay) = self.decide(attempt, failure, retryAfter, deadline, budget) {
                            self.metrics.recordRetry(upstream: lease.id, reason: failure.label)
                            try await Task.sleep(for: delay)
                            continue attemptLoop
                        }
                        break attemptLoop
                    }
                    if let bufferLimit {
                        let body = try await response.body.collect(upTo: bufferLimit, upstream: lease.id)
                        response.body = UpstreamBody(buffer: body)
                    } else if response.status.kind == .successful {
                        // Nothing reaches the client before the first body chunk: an upstream that
                        // sends a head and then fails or goes silent (idle timeout) is still retried.
                        var iterator = response.body.makeAsyncIterator()
                        let first = try await iterator.next()
                        response.body = UpstreamBody(PrefetchedBody(first: first, rest: iterator))
                    }
                    if response.status.kind == .successful || response.status.kind == .redirection {
                        lease.breaker?.recordSuccess(wasProbe: lease.isProbe)
                    } else {
                        lease.breaker?.recordIgnored(wasProbe: lease.isProbe)
                    }
                    response.body = UpstreamBody(GuardedBody(base: response.body, leaseGuard: leaseGuard))
                    if index > 0 {
                        self.metrics.recordFallback(from: candidates[0].model, to: candidate.model)
                    }
                    return UpstreamExecution(
                        response: response,
                        model: candidate.model,
                        upstream: lease.id,
                        attempts: attempts,
                        usedFallback: index > 0
                    )
                } catch let error as UpstreamError {
                    if error.code == .cancelled || Task.isCancelled {
                        lease.breaker?.recordIgnored(wasProbe: lease.isProbe)
                        throw error
                    }
                    if error.code == .responseTooLarge {
                        lease.breaker?.recordIgnored(wasProbe: lease.isProbe)
                        throw SidecarError.upstream(error)
                    }
                    lease.breaker?.recordFailure(wasProbe: lease.isProbe)
                    self.metrics.recordUpstreamFailure(upstream: lease.id, reason: error.shortDescription)
                    self.logger.debug(
                        "upstream attempt failed",
                        metadata: [
                            "request.id": "\(requestID)", "upstream.name": "\(lease.id)", "attempt": "\(attempt)",
                            "error": "\(error)",
                        ]
                    )
                    if ContinuousClock.now >= deadline {
                        throw SidecarError.upstream(
                            UpstreamError(.deadlineExceeded, upstream: lease.id, detail: "request deadline exceeded")
                        )
                    }
                    lastFailure = .error(error)
                    let failure: RetryableFailure =
                        error.isConnectFailure
                        ? .connectFailed : (error.code == .other ? .other : .timedOutBeforeFirstByte)
                    if case .retry(let delay) = self.decide(attempt, failure, nil, deadline, budget) {
                        self.metrics.recordRetry(upstream: lease.id, reason: failure.label)
                        try await Task.sleep(for: delay)
                        continue attemptLoop
                    }
                    break attemptLoop
                }
            }
            if attempt > 0 {
                tried.append("\(candidate.model) (\(attempt) attempt(s)): \(Self.describe(lastFailure))")
            }
        }
        let error = Self.finalError(lastFailure, breakerWait: breakerWait, attempts: attempts)
        guard tried.count > 1 else { throw error }
        throw SidecarError(
            status: error.status,
            type: error.type,
            code: error.code,
            message: error.message + (error.message.hasSuffix(".") ? " " : ". ") + "Tried in order: "
                + tried.joined(separator: "; ") + ".",
            retryAfter: error.retryAfter
        )
    }

    private func decide(
        _ attempt: Int,
        _ failure: RetryableFailure,
        _ retryAfter: Duration?,
        _ deadline: ContinuousClock.Instant,
        _ budget: RetryBudget?
    ) -> RetryDecision {
        let decision = self.policy.decision(
            attempt: attempt,
            failure: failure,
            retryAfter: retryAfter,
            timeLeft: ContinuousClock.now.duration(to: deadline),
            jitter: Double.random(in: 0..<1),
            budgetAllows: budget?.canRetry() ?? true
        )
        if decision.isRetry { budget?.recordRetry() }
        return decision
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
    static func retryAfter(_ headers: HTTPFields) -> Duration? {
        if let name = HTTPField.Name("retry-after-ms"), let value = headers[name],
            let duration = RetryAfter.parseMilliseconds(value)
        {
            return duration
        }
        return headers[.retryAfter].flatMap { RetryAfter.parse($0, now: Date()) }
    }

    private static func errorMessage(_ body: ByteBuffer?) -> String {
        guard let body, let error = try? JSONDecoder().decode(OpenAIErrorBody.self, from: Data(body.readableBytesView))
        else { return body.map { String(buffer: $0).prefix(200).description } ?? "" }
        return error.error.message
    }
}

/// Releases a balancer lease exactly once, when the response body is done with or dropped.
final class LeaseGuard: Sendable {
    let balancer: UpstreamBalancer
    let lease: UpstreamBalancer.Lease

    init(balancer: UpstreamBalancer, lease: UpstreamBalancer.Lease) {
        self.balancer = balancer
        self.lease = lease
    }

    deinit {
        self.balancer.release(self.lease)
    }
}

/// A body that keeps its lease alive while anyone can still read it.
struct GuardedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let base: UpstreamBody
    let leaseGuard: LeaseGuard

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: UpstreamBody.AsyncIterator
        let leaseGuard: LeaseGuard

        mutating func next() async throws -> ByteBuffer? {
            try await self.base.next()
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: self.base.makeAsyncIterator(), leaseGuard: self.leaseGuard)
    }
}

/// A body whose first chunk was already read (to decide whether to retry), followed by the rest.
///
/// `@unchecked Sendable` because it carries a started iterator: the pipeline hands it to
/// exactly one consumer, and `makeAsyncIterator` gives the iterator out once (a second call
/// gets an empty body), so the iterator is never used from two places.
final class PrefetchedBody: AsyncSequence, @unchecked Sendable {
    typealias Element = ByteBuffer
    private let taken = Atomic<Bool>(false)
    private let first: ByteBuffer?
    private let rest: UpstreamBody.AsyncIterator

    init(first: ByteBuffer?, rest: UpstreamBody.AsyncIterator) {
        self.first = first
        self.rest = rest
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var first: ByteBuffer?
        var rest: UpstreamBody.AsyncIterator?

        mutating func next() async throws -> ByteBuffer? {
            if let first = self.first {
                self.first = nil
                return first
            }
            return try await self.rest?.next()
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        guard !self.taken.exchange(true, ordering: .acquiringAndReleasing) else {
            return AsyncIterator(first: nil, rest: nil)
        }
        // An upstream body that ended before any chunk has nothing more to read.
        return AsyncIterator(first: self.first, rest: self.first == nil ? nil : self.rest)
    }
}
