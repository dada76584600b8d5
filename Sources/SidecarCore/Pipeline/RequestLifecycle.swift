import NIOCore
import NIOHTTP1
import SidecarHTTP

/// The life of one proxied request (chat, completions, remote embeddings, pass-through), phase
/// by phase, in the order they run:
///
/// ```
/// 1 decode -> 2 cache lookup -> 3 score -> 4 route -> 5 forward -> 6 relay -> 7 price -> 8 cache store -> 9 record
/// ```
///
/// Each phase is one component of ``RequestPhases`` with a narrow input and output; none calls
/// back into this file. They share what they learn through the ``RequestContext``. Phases 1-4
/// run at once on the connection's event loop; 5 is ``ForwardExchange`` (attempts, retries and
/// fallbacks, decided by ``ForwardingStateMachine``), which hands its answer back here through
/// ``ForwardOutput``; 6-9 run as that answer arrives. A whole answer is priced before it is
/// relayed (its cost is a header); a stream is priced when it ends (its cost is a trailer).
/// Event-loop confined; one per request.
final class RequestLifecycle {
    private let phases: RequestPhases
    private let sink: any ClientResponseSink
    private let context: RequestContext
    private var relay: ResponseRelay
    private var exchange: ForwardExchange?
    private var status = 0  // of a relayed answer, recorded when it ends
    private var ended = false
    /// Whether the answer is relayed as a stream. Kept here, not read from `relay`: a client
    /// that goes away while a relay call writes to it ends the request from inside that call.
    private var streamed = false
    private var slot: AdmissionGate?  // the admission slot held, given back once at the end

    /// `admittedTokens`: the prompt tokens charged to the app's token rate on arrival; `slot`:
    /// the admission gate whose slot it holds, left when it ends however it ends.
    init(
        _ request: ProxyRequest,
        phases: RequestPhases,
        sink: any ClientResponseSink,
        admittedTokens: Int = 0,
        slot: AdmissionGate? = nil
    ) {
        self.context = RequestContext(request: request)
        self.context.admittedTokens = admittedTokens
        self.phases = phases
        self.relay = ResponseRelay(redactor: phases.runtime.directory.redactor)
        self.sink = sink
        self.slot = slot
    }

    /// Runs the request. Returns `false` when it is not this path's to answer (the local
    /// embedding model, answered in a task by the responder).
    func run(environment: ForwardEnvironment, headTimer: CoalescedDeadlineTimer) -> Bool {
        do {
            // 1. Decode: the OpenAI view of the body, validated (unknown fields stay in the bytes).
            guard let decoded = try self.phases.decoder.decode(self.context.request) else {
                self.ended = true
                self.slot.take()?.leave()
                return false
            }
            self.context.decoded = decoded
        } catch {
            self.fail(SidecarError.mapped(error) ?? .internalError("The sidecar failed to read the request: \(error)"))
            return true
        }
        // 2. Cache lookup: exact in memory at once; a shared store or a semantic lookup later.
        switch self.phases.cache.lookup(self.context, on: environment.eventLoop) {
        case .hit(let hit):
            self.answerFromCache(hit)
        case .miss:
            self.forward(environment: environment, headTimer: headTimer)
        case .pending(let lookup):
            lookup.assumeIsolated().whenSuccess { [self] result in
                guard !self.ended else { return }
                (self.context.embedding, self.context.embeddingTried) = (result.embedding, result.embeddingTried)
                if let hit = result.hit { return self.answerFromCache(hit) }
                self.forward(environment: environment, headTimer: headTimer)
            }
        }
        return true
    }

    private func forward(environment: ForwardEnvironment, headTimer: CoalescedDeadlineTimer) {
        guard let decoded = self.context.decoded else { return }
        // 3. Score: how hard the prompt is, and the features behind the score. The learned router
        // reads the prompt's embedding: when the cache made none, it is made now, within a budget.
        if let embedding = self.phases.scorer.embeddingWanted(self.context, on: environment.eventLoop) {
            embedding.assumeIsolated().whenSuccess { [self] vector in
                guard !self.ended else { return }
                self.context.embedding = vector
                self.forward(environment: environment, headTimer: headTimer)
            }
            return
        }
        self.context.score = self.phases.scorer.score(decoded, embedding: self.context.embedding)
        // 4. Route: the model to ask, its fallbacks, the deadline and retry rules.
        let route: RoutePlan
        do {
            route = try self.phases.router.route(
                self.context.request,
                decoded: decoded,
                score: self.context.score,
                promptTokens: Pricer.estimatedPromptTokens(self.context)
            )
        } catch {
            return self.fail(error)
        }
        (self.context.route, self.context.app, self.context.spentToday) = (route.decision, route.app, route.spentToday)
        // 5. Forward: attempts with breakers, retries and fallbacks; the answer comes back below.
        let exchange = ForwardExchange(
            route.forwarding,
            outgoing: route.outgoing,
            environment: environment,
            headTimer: headTimer,
            output: self
        )
        self.exchange = exchange
        exchange.start()
    }

    /// 2b. A cache hit is replayed at cost 0 in place of phases 3-8.
    private func answerFromCache(_ hit: CachedAnswer) {
        CacheReplay.prepare(self.context, for: hit)
        self.phases.recorder.recordCacheHit(hit, context: self.context)
        guard let status = CacheReplay.send(hit.answer, context: self.context, to: self.sink) else {
            return self.fail(.internalError("The cached answer could not be read."))
        }
        self.end(status: status)
    }

    private func fail(_ error: SidecarError) {
        // An upstream's message quoted in the error may quote its key.
        let error = self.phases.runtime.directory.redactor.redact(error)
        self.phases.recorder.recordError(error)
        ErrorResponse.send(error, requestID: self.context.request.requestID, to: self.sink)
        self.end(status: error.status.code)
    }

    /// 9. Record: metrics and the access-log line, once.
    private func end(status: Int) {
        guard !self.ended else { return }
        self.ended = true
        self.exchange = nil
        self.phases.recorder.record(self.context, status: status, streamed: self.streamed)
        self.slot.take()?.leave()
    }
}

extension RequestLifecycle: ForwardOutput {
    func forwardDelivered(_ head: HTTPResponseHead, body: ByteBuffer, served: ForwardingStateMachine.Served) {
        self.context.served = served
        self.context.answeredAt = .now
        // 7. Price: from the answer's usage (before the relay: a whole answer's cost is a header).
        self.context.cost = self.phases.pricer.price(wholeAnswer: body, status: head.status, context: self.context)
        // 6. Relay (a failed answer without the upstreams' keys).
        self.relay.sendWhole(head, body: body, context: self.context, to: self.sink)
        // 8. Cache store.
        if head.status == .ok { self.phases.cache.store(self.context, answer: .whole(Array(buffer: body))) }
        self.end(status: Int(head.status.code))
    }

    func forwardCommitted(_ head: HTTPResponseHead, served: ForwardingStateMachine.Served, isEventStream: Bool) {
        self.context.served = served
        self.context.answeredAt = .now
        // 6. Relay: the head now, then each chunk as it comes.
        self.streamed = true
        self.relay.startStream(head, isEventStream: isEventStream, context: self.context, to: self.sink)
        self.status = Int(head.status.code)
    }

    func forwardRelayed(_ chunk: ByteBuffer) {
        // A failed answer relayed as it comes (pass-through paths) loses the keys in the relay.
        self.relay.relay(chunk, to: self.sink)
        if !self.sink.isWritable { self.exchange?.setReadingPaused(true) }
    }

    func forwardEnded(failure: UpstreamError?) {
        // 7. Price: from the usage the stream reported, else an estimate (an SSE stream's cost is its trailer).
        if let cost = self.phases.pricer.price(stream: self.relay, context: self.context) { self.context.cost = cost }
        self.relay.endStream(failure: failure, cost: self.context.cost, to: self.sink)
        // 8. Cache store: a stream that completed cleanly, as its events.
        if failure == nil, self.status == 200, let events = self.relay.capturedEvents {
            self.phases.cache.store(self.context, answer: .events(events))
        }
        self.end(status: self.status)
    }

    func forwardFailed(_ error: SidecarError) {
        self.fail(error)
    }
}

extension RequestLifecycle: InFlightRequest {
    /// The client went away: the forward phase stops; the request is recorded as 499.
    func cancel() {
        self.exchange?.cancel()
        self.end(status: 499)
    }

    func writabilityChanged(_ writable: Bool) {
        self.exchange?.setReadingPaused(!writable)
    }
}
