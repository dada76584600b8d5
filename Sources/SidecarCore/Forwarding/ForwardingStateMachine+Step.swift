import NIOCore
import NIOHTTP1
import SidecarHTTP
import SidecarOpenAI
import SidecarPolicy

/// What the forwarding state machine needs to know about one request.
struct ForwardingConfiguration: Sendable {
    /// How the answer is read and handed on.
    enum Answer: Sendable, Equatable {
        /// Read whole inside the attempt (a body cut short is retried), then delivered.
        case whole
        /// A requested stream: an SSE answer is relayed from its first chunk, anything else read whole.
        case eventStream
        /// Relayed as it arrives (other `/v1/*` paths, Ollama's `/api/*`); error answers too.
        case passThrough
    }

    /// The models to try, in order: the routed one, then its fallbacks.
    var candidates: [UpstreamCandidate]
    /// The request's deadline: retries, fallbacks and streaming included.
    var deadline: ContinuousClock.Instant
    /// One attempt's wait for the response head.
    var firstByteTimeout: Duration
    var policy: RetryPolicy
    /// Retry 429/5xx answers (off for non-idempotent pass-through calls).
    var retriesStatuses: Bool
    var answer: Answer
    /// The largest answer read whole.
    var maxResponseBytes: Int
}

/// One model to try, and the upstream to use when the model is not configured (pinned ids).
struct UpstreamCandidate: Sendable, Equatable {
    var model: String
    var upstream: String
}

extension ForwardingStateMachine {
    /// Why the last attempt failed.
    enum Failure: Equatable {
        case error(UpstreamError)
        case status(code: Int, message: String, retryAfter: Duration?, upstream: String)
    }

    /// The upstream leased for the current attempt.
    struct Lease {
        var upstream: String
        var isProbe: Bool
        /// The upstream gets the client's own credential (`pass_client_authorization`).
        var clientCredential: Bool
    }

    /// The upstream that got the current (or last) attempt.
    var upstream: String? { self.lease?.upstream }

    /// Whether an upstream call is in flight and not yet answered (so a cancellation says
    /// nothing about the upstream's health).
    var isAttemptInFlight: Bool {
        switch self.state {
        case .awaitingHead, .readingFailedBody, .readingWholeBody, .awaitingFirstChunk: return true
        case .acquiring, .relaying, .backingOff, .done: return false
        }
    }

    var isRelaying: Bool { self.state == .relaying }

    /// The start of a relayed answer, held until it says something: an event stream's
    /// ``StreamPrelude`` (its role-only opening), any other answer's first chunk.
    struct HeldStart {
        private var bytes = ByteBuffer()
        private var prelude: StreamPrelude?

        init(prelude: Bool) {
            self.prelude = prelude ? StreamPrelude() : nil
        }

        /// Holds `buffer`; `false` once what is held says something (time to commit).
        mutating func keep(_ buffer: ByteBuffer) -> Bool {
            if self.bytes.readableBytes == 0 {
                self.bytes = buffer  // the common single first chunk: no copy
            } else {
                var buffer = buffer
                self.bytes.writeBuffer(&buffer)
            }
            return self.prelude?.feed(buffer) == .hold
        }

        /// What is held, `nil` when nothing is.
        mutating func take() -> ByteBuffer? {
            guard self.bytes.readableBytes > 0 else { return nil }
            defer { self.bytes = ByteBuffer() }
            return self.bytes
        }
    }

    static func verdict(_ head: HTTPResponseHead) -> BreakerVerdict {
        (200..<400).contains(Int(head.status.code)) ? .success : .ignored
    }

    static func isEventStream(_ headers: HTTPHeaders) -> Bool {
        headers.first(name: "content-type")?.lowercased().hasPrefix("text/event-stream") ?? false
    }

    /// What an event leads to: first what to record on the leased upstream, then what to do.
    struct Step: Equatable {
        /// The breaker verdict and lease release for the current lease, if any.
        var settle: Settlement?
        /// A label for `llm_sidecar_upstream_failures_total{reason}` when an attempt failed.
        var failure: String?
        var action: Action

        init(settle: Settlement? = nil, failure: String? = nil, action: Action) {
            self.settle = settle
            self.failure = failure
            self.action = action
        }

        static let none = Step(action: .none)

        func settling(_ settle: Settlement, failure: String) -> Step {
            var step = self
            step.settle = settle
            step.failure = failure
            return step
        }
    }

    /// What to record on the leased upstream's breaker, and whether the lease ends.
    struct Settlement: Equatable {
        var verdict: BreakerVerdict?
        var wasProbe: Bool
        /// Give the lease back to the balancer (and cancel a call still in flight).
        var release: Bool
    }

    enum BreakerVerdict: Equatable {
        /// The upstream answered (2xx/3xx).
        case success
        /// Counts against the upstream's health.
        case failure
        /// Says nothing about the upstream's health (a 4xx, a 429, a cancelled call).
        case ignored
    }

    /// One attempt to send.
    struct Attempt: Equatable {
        var model: String
        var upstream: String
        /// 1 for the first attempt on this model.
        var number: Int
        /// No response head by then: ``ForwardingStateMachine/headTimedOut(now:)``.
        var headDeadline: ContinuousClock.Instant
    }

    /// Who answered.
    struct Served: Equatable {
        /// The model the answer is labelled and priced with (`""` for pass-through calls).
        var model: String
        var upstream: String
        /// The first candidate's model when a fallback answered.
        var fallbackFrom: String?
    }

    enum Action: Equatable {
        /// Nothing to do: keep reading.
        case none
        /// Lease an upstream for this candidate from its balancer, then call
        /// ``ForwardingStateMachine/leased(upstream:isProbe:now:)`` or ``ForwardingStateMachine/unavailable(retryAfter:)``.
        case acquire(UpstreamCandidate)
        /// Send the attempt and watch its first-byte deadline.
        case send(Attempt)
        /// Wait, then ``ForwardingStateMachine/backoffElapsed()``; if the upstream's retry budget
        /// refuses, ``ForwardingStateMachine/retryBudgetExhausted()`` instead.
        case backOff(Duration, upstream: String, reason: String)
        /// A whole answer: send it to the client.
        case deliver(HTTPResponseHead, body: ByteBuffer, served: Served)
        /// Send the head of a relayed answer (and its first chunk); `ends` when the body was empty.
        case commit(HTTPResponseHead, served: Served, isEventStream: Bool, chunk: ByteBuffer?, ends: Bool)
        /// Pass a chunk of a committed answer on.
        case relay(ByteBuffer)
        /// The relayed answer ended, cleanly or cut by `failure`.
        case endStream(failure: UpstreamError?)
        /// Answer the client with this error.
        case fail(SidecarError)
        /// The client is gone: stop.
        case abandon
    }
}

/// The jitter samples for backoff: a small seeded generator (wyrand), so the machine stays a
/// pure value and tests can fix the samples.
struct JitterSource: Equatable {
    private var state: UInt64
    private let constant: Double?

    init(seed: UInt64) {
        self.state = seed
        self.constant = nil
    }

    /// Always `value` (tests).
    static func constant(_ value: Double) -> JitterSource {
        JitterSource(state: 0, constant: value)
    }

    private init(state: UInt64, constant: Double?) {
        self.state = state
        self.constant = constant
    }

    /// A sample in `0..<1`.
    mutating func next() -> Double {
        if let constant { return constant }
        self.state &+= 0xA076_1D64_78BD_642F
        let product = self.state.multipliedFullWidth(by: self.state ^ 0xE703_7ED1_A0B4_28DB)
        return Double((product.high ^ product.low) >> 11) * 0x1.0p-53
    }
}
