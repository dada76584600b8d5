import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import SidecarHTTP

/// Sends each request the listener read to the path that answers it: forwarded endpoints to a
/// ``RequestLifecycle`` on the connection's event loop (no task switch), the others (health,
/// metrics, models, the local embedder) to the ``SidecarResponder`` in a task.
struct SidecarDispatcher: RequestDispatcher {
    /// The phases new requests run through (replaced on reload).
    let current: CurrentPhases
    let responder: SidecarResponder
    let pools: UpstreamConnectionPools
    private let environments: [ObjectIdentifier: LoopBoundEnvironment]

    init(
        current: CurrentPhases,
        responder: SidecarResponder,
        pools: UpstreamConnectionPools,
        group: any EventLoopGroup
    ) {
        self.current = current
        self.responder = responder
        self.pools = pools
        var environments: [ObjectIdentifier: LoopBoundEnvironment] = [:]
        for eventLoop in group.makeIterator() {
            environments[ObjectIdentifier(eventLoop)] = LoopBoundEnvironment()
        }
        self.environments = environments
    }

    /// The forward environment of `eventLoop` for `phases`, built on first use there (once per
    /// loop of the group, and again after a reload).
    private func environment(for phases: RequestPhases, on eventLoop: any EventLoop) -> ForwardEnvironment {
        let slot = self.environments[ObjectIdentifier(eventLoop)]
        if let slot, let environment = slot.environment, slot.phases === phases { return environment }
        let environment = phases.forwardEnvironment(
            transport: self.pools.pool(for: eventLoop),
            eventLoop: eventLoop
        )
        slot?.environment = environment
        slot?.phases = phases
        return environment
    }

    func dispatch(
        _ received: ReceivedRequest,
        connection: ListenerConnection,
        sink: any ClientResponseSink
    ) -> any InFlightRequest {
        let head = received.head
        let method = HTTPRequest.Method(head.method.rawValue) ?? .get
        let path = head.uri.utf8.firstIndex(of: UInt8(ascii: "?")).map { String(head.uri[..<$0]) } ?? head.uri
        let endpoint = ProxyRequest.Endpoint.classify(method: method, path: path)
        let phases = self.current.phases
        // Who asks: with [[clients]], a valid token (else 401) names the app.
        let app: String
        switch phases.runtime.apps.identify(head.headers, path: path) {
        case .app(let name): app = name
        case .refused(let error): return Self.answer(error, requestID: received.requestID, phases: phases, sink: sink)
        }
        guard endpoint.isForwarded else {
            return self.respond(received, method: method, connection: connection, sink: sink)
        }
        // The app's rates, then a slot among the requests in flight (or a place in the queue).
        let tokens = ClientAdmission.estimatedTokens(bodyBytes: received.body.readableBytes)
        if phases.limitsRates,
            case .limited(let what, let limit, let retryAfter) = phases.admission.rates.admit(app: app, tokens: tokens)
        {
            let error = SidecarError.rateLimited(app: app, what: what, limit: limit, retryAfter: retryAfter)
            return Self.answer(error, requestID: received.requestID, phases: phases, sink: sink)
        }
        let request = ProxyRequest(
            endpoint: endpoint,
            method: method,
            path: head.uri,
            headers: head.headers,
            body: received.body,
            requestID: received.requestID,
            receivedAt: received.receivedAt,
            app: app
        )
        let gate = phases.admission.gate
        if gate.tryEnter() {
            return self.forward(request, received: received, tokens: tokens, connection: connection, sink: sink)
        }
        let eventLoop = connection.channel.eventLoop
        let waiting = QueuedRequest()
        // What the hand-over and the queue's timeout use, back on this connection's loop.
        let bound = NIOLoopBound((waiting: waiting, sink: sink, connection: connection), eventLoop: eventLoop)
        let dispatcher = self
        switch gate.enter({
            eventLoop.execute {
                let (waiting, sink, connection) = bound.value
                waiting.timeout?.cancel()
                guard !waiting.cancelled else { return gate.leave() }
                waiting.started = dispatcher.forward(
                    request,
                    received: received,
                    tokens: tokens,
                    connection: connection,
                    sink: sink
                )
            }
        }) {
        case .admitted:
            return self.forward(request, received: received, tokens: tokens, connection: connection, sink: sink)
        case .refused:
            let error = SidecarError.overloaded(inFlight: gate.counts.inFlight, queued: false)
            return Self.answer(error, requestID: received.requestID, phases: phases, sink: sink)
        case .queued(let id):
            waiting.abandon = { gate.abandon(id) }
            let timeout = phases.runtime.configuration.limits.queueTimeout
            waiting.timeout = eventLoop.scheduleTask(in: .nanoseconds(timeout.saturatingNanoseconds)) {
                let (waiting, sink, _) = bound.value
                guard waiting.started == nil, !waiting.cancelled, gate.abandon(id) else { return }
                waiting.cancelled = true
                let error = SidecarError.overloaded(inFlight: gate.counts.inFlight, queued: true)
                _ = Self.answer(error, requestID: request.requestID, phases: dispatcher.current.phases, sink: sink)
            }
            return waiting
        }
    }

    /// Runs an admitted request's lifecycle; it gives its slot back when it ends.
    private func forward(
        _ request: ProxyRequest,
        received: ReceivedRequest,
        tokens: Int,
        connection: ListenerConnection,
        sink: any ClientResponseSink
    ) -> any InFlightRequest {
        let phases = self.current.phases
        let gate = phases.admission.gate
        let lifecycle = RequestLifecycle(request, phases: phases, sink: sink, admittedTokens: tokens, slot: gate)
        let environment = self.environment(for: phases, on: connection.channel.eventLoop)
        if lifecycle.run(environment: environment, headTimer: connection.headTimer) { return lifecycle }
        // The local embedding model: answered by the responder.
        return self.respond(received, method: request.method, connection: connection, sink: sink)
    }

    private func respond(
        _ received: ReceivedRequest,
        method: HTTPRequest.Method,
        connection: ListenerConnection,
        sink: any ClientResponseSink
    ) -> any InFlightRequest {
        ResponderTask(
            received,
            method: method,
            responder: self.responder,
            channel: connection.channel,
            sink: sink
        )
    }

    /// Answers with an error at once.
    private static func answer(
        _ error: SidecarError,
        requestID: String,
        phases: RequestPhases,
        sink: any ClientResponseSink
    ) -> any InFlightRequest {
        phases.recorder.recordError(error)
        ErrorResponse.send(error, requestID: requestID, to: sink)
        return AnsweredRequest.shared
    }

    func reject(_ rejection: ListenerRejection, requestID: String, sink: any ClientResponseSink) {
        let error: SidecarError
        switch rejection {
        case .bodyTooLarge(let limit):
            error = .bodyTooLarge(limit: limit)
        case .notHTTP(let detail):
            error = .invalidRequest("The request is not valid HTTP/1.1: \(detail).", code: "bad_http_request")
        case .headersTooLarge:
            error = .headersTooLarge(self.current.phases.runtime.configuration.limits)
        case .requestTimeout:
            error = .requestReadTimeout(self.current.phases.runtime.configuration.limits.requestRead)
        case .badTarget(let reason):
            error = .invalidTarget(reason)
        }
        self.current.phases.recorder.recordError(error)
        ErrorResponse.send(error, requestID: requestID, to: sink)
    }
}

/// A request answered at once: nothing to cancel.
private final class AnsweredRequest: InFlightRequest, Sendable {
    static let shared = AnsweredRequest()
    func cancel() {}
    func writabilityChanged(_ writable: Bool) {}
}

/// A request waiting in the admission queue, then the one it started. Event-loop confined.
private final class QueuedRequest: InFlightRequest {
    var started: (any InFlightRequest)?
    var cancelled = false
    var timeout: Scheduled<Void>?
    /// Takes it out of the queue; `false` when its slot was handed over already.
    var abandon: (() -> Bool)?

    func cancel() {
        if let started {
            started.cancel()
            self.started = nil
            return
        }
        guard !self.cancelled else { return }
        self.cancelled = true
        self.timeout?.cancel()
        // Still queued: out. Otherwise the hand-over runs next on this loop, sees `cancelled`
        // and gives the slot back.
        _ = self.abandon?()
    }

    func writabilityChanged(_ writable: Bool) {
        self.started?.writabilityChanged(writable)
    }
}

/// One event loop's forward environment: set and read only on that loop.
private final class LoopBoundEnvironment: @unchecked Sendable {
    var environment: ForwardEnvironment?
    var phases: RequestPhases?
}

/// A request the responder answers, in a task; its writes hop back to the event loop.
private final class ResponderTask: InFlightRequest {
    private var task: Task<Void, Never>?

    init(
        _ received: ReceivedRequest,
        method: HTTPRequest.Method,
        responder: SidecarResponder,
        channel: any Channel,
        sink: any ClientResponseSink
    ) {
        let request = Request(
            head: HTTPRequest(
                method: method,
                scheme: nil,
                authority: nil,
                path: received.head.uri,
                headerFields: HTTPFields(received.head.headers)
            ),
            body: RequestBody(buffer: received.body)
        )
        let context = BasicRequestContext(
            source: ApplicationRequestContextSource(channel: channel, logger: responder.logger)
        )
        let eventLoop = channel.eventLoop
        let sink = NIOLoopBound(sink, eventLoop: eventLoop)
        let requestID = received.requestID
        self.task = Task {
            let response = await responder.respond(request, context: context, requestID: requestID)
            var headers = HTTPHeaders(response.headers)
            let contentLength =
                response.body.contentLength ?? headers.first(name: "content-length").flatMap { Int($0) }
            headers.remove(name: "content-length")
            let status = HTTPResponseStatus(
                statusCode: response.status.code,
                reasonPhrase: response.status.reasonPhrase
            )
            let head = headers
            try? await eventLoop.submit {
                sink.value.sendHead(status: status, headers: head, contentLength: contentLength)
            }.get()
            let writer = LoopBoundBodyWriter(sink: sink, eventLoop: eventLoop)
            do {
                try await response.body.write(writer)
            } catch {
                eventLoop.execute { sink.value.sendEnd(trailers: nil, abort: true) }
            }
        }
    }

    func cancel() {
        self.task?.cancel()
        self.task = nil
    }

    func writabilityChanged(_ writable: Bool) {}
}

/// Writes a responder's body to the connection from a task, one event-loop hop per write.
private struct LoopBoundBodyWriter: ResponseBodyWriter {
    let sink: NIOLoopBound<any ClientResponseSink>
    let eventLoop: any EventLoop

    mutating func write(_ buffer: ByteBuffer) async throws {
        let sink = self.sink
        try await self.eventLoop.submit { sink.value.sendBody(buffer, flush: true) }.get()
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        let sink = self.sink
        let trailers = trailingHeaders.map { HTTPHeaders($0) }
        try await self.eventLoop.submit { sink.value.sendEnd(trailers: trailers, abort: false) }.get()
    }
}
