import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// What every client connection shares: the pipeline, the slow-path responder and the
/// upstream connection pools.
struct SidecarConnectionServices: Sendable {
    let pipeline: ProxyPipeline
    let responder: SidecarResponder
    let pools: UpstreamConnectionPools
    let logger: Logger
}

/// One client connection, on its event loop. Reads a request (head and body, bounded), then
/// either forwards it in a ``ForwardExchange`` on this event loop (chat, completions, remote
/// embeddings, pass-through: the hot path, no task switches), or hands it to the
/// ``SidecarResponder`` in a task (health, metrics, models, the local embedder).
///
/// One request is handled at a time: pipelined requests wait in a bounded queue until the
/// response before them has ended (this replaces NIO's `HTTPServerPipelineHandler`, which
/// toggles read interest, two `epoll_ctl` calls, on every request). On
/// `ChannelShouldQuiesceEvent` (graceful shutdown) an idle connection closes at once and a
/// busy one after its response.
final class SidecarConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    /// Responses leave as bytes: ``HTTPResponseFramer`` writes the head and the framing.
    typealias OutboundOut = ByteBuffer

    private enum State {
        case idle
        case receiving(HTTPRequestHead, ByteBuffer)
        /// The body went over the limit: the 413 was sent, the rest is dropped.
        case discarding
        case responding
    }

    private let services: SidecarConnectionServices
    private var state = State.idle
    private var context: ChannelHandlerContext?
    private var keepAlive = true
    private var isHeadRequest = false
    private var exchange: ForwardExchange?
    private var task: Task<Void, Never>?
    private var requestIDs = RequestIDGenerator()
    private var framer = HTTPResponseFramer()
    /// The first-byte deadline of the exchange in flight; one per connection (it coalesces tasks).
    private var headTimer: CoalescedDeadlineTimer?
    /// Parts of pipelined requests that arrived while a response was in flight.
    private var queued = CircularBuffer<HTTPServerRequestPart>()
    private var queuedBytes = 0
    private var draining = false
    private var quiescing = false
    /// The client shut down its sending side (the server allows half-closure): answer what was
    /// received, then close.
    private var inputClosed = false

    init(services: SidecarConnectionServices) {
        self.services = services
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        if case .responding = self.state {
            self.enqueue(part, context: context)
        } else if !self.queued.isEmpty {
            self.enqueue(part, context: context)
        } else {
            self.handle(part, context: context)
        }
    }

    private func enqueue(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        if case .body(let buffer) = part { self.queuedBytes += buffer.readableBytes }
        self.queued.append(part)
        // A client pipelining more than a request body's worth is not waited for.
        if self.queuedBytes > self.services.pipeline.runtime.configuration.server.maxBodyBytes + (1 << 20)
            || self.queued.count > 1024
        {
            context.close(promise: nil)
        }
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            // The sidecar never switches protocols, and NIO's decoder stops after an upgrade
            // request: answer it over HTTP/1.1, then close.
            self.keepAlive = head.isKeepAlive && !Self.asksForUpgrade(head)
            self.isHeadRequest = head.method == .HEAD
            let limit = self.services.pipeline.runtime.configuration.server.maxBodyBytes
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > limit {
                return self.rejectBody(head, limit: limit)
            }
            if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
                let continueHead = HTTPResponseFramer.continueHead(allocator: context.channel.allocator)
                context.writeAndFlush(self.wrapOutboundOut(continueHead), promise: nil)
            }
            self.state = .receiving(head, ByteBuffer())
        case .body(var part):
            guard case .receiving(let head, var body) = self.state else { return }
            let limit = self.services.pipeline.runtime.configuration.server.maxBodyBytes
            guard body.readableBytes + part.readableBytes <= limit else {
                return self.rejectBody(head, limit: limit)
            }
            self.state = .idle  // drop the reference so `body` stays uniquely owned while appending
            if body.readableBytes == 0 {
                body = part
            } else {
                body.writeBuffer(&part)
            }
            self.state = .receiving(head, body)
        case .end:
            switch self.state {
            case .receiving(let head, let body):
                self.state = .responding
                self.dispatch(head, body: body, context: context)
            case .discarding:
                self.state = .idle
            case .idle, .responding:
                return
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            self.inputClosed = true
            if case .idle = self.state, self.queued.isEmpty { context.close(promise: nil) }
            return
        }
        guard event is ChannelShouldQuiesceEvent else {
            return context.fireUserInboundEventTriggered(event)
        }
        self.quiescing = true
        self.queued.removeAll()
        switch self.state {
        case .idle: context.close(promise: nil)
        case .receiving, .responding, .discarding: self.keepAlive = false
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.exchange?.cancel()
        self.exchange = nil
        self.headTimer?.stop()
        self.headTimer = nil
        self.task?.cancel()
        self.task = nil
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.exchange?.writabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.services.logger.debug("client connection error", metadata: ["error": "\(error)"])
        // Bytes that are not HTTP/1.1: answer 400 (OpenAI-shaped) unless a response has begun, then close.
        if error is HTTPParserError {
            switch self.state {
            case .idle, .receiving:
                self.state = .responding
                self.keepAlive = false
                self.queued.removeAll()
                return self.sendError(
                    .invalidRequest("The request is not valid HTTP/1.1: \(error).", code: "bad_http_request"),
                    requestID: self.requestIDs.next()
                )
            case .discarding, .responding:
                break
            }
        }
        context.close(promise: nil)
    }

    // MARK: Dispatch

    private func dispatch(_ head: HTTPRequestHead, body: ByteBuffer, context: ChannelHandlerContext) {
        let requestID = SidecarResponder.clientRequestID(head.headers) ?? self.requestIDs.next()
        let method = HTTPRequest.Method(head.method.rawValue) ?? .get
        let path = head.uri.utf8.firstIndex(of: UInt8(ascii: "?")).map { String(head.uri[..<$0]) } ?? head.uri
        guard let endpoint = Self.forwardedEndpoint(method: method, path: path) else {
            return self.respondInTask(head, method: method, body: body, requestID: requestID)
        }
        let request = ProxyRequest(
            endpoint: endpoint,
            method: method,
            path: head.uri,
            headers: head.headers,
            body: body,
            requestID: requestID
        )
        let plan: ForwardPlan
        do {
            guard let forward = try self.services.pipeline.plan(request) else {
                return self.respondInTask(head, method: method, body: body, requestID: requestID)
            }
            plan = forward
        } catch {
            return self.sendError(ForwardExchange.sidecarError(error), requestID: requestID)
        }
        let headTimer = self.headTimer ?? CoalescedDeadlineTimer(eventLoop: context.eventLoop)
        self.headTimer = headTimer
        let exchange = ForwardExchange(
            plan: plan,
            pipeline: self.services.pipeline,
            pool: self.services.pools.pool(for: context.eventLoop),
            sink: self,
            headTimer: headTimer,
            eventLoop: context.eventLoop
        )
        self.exchange = exchange
        exchange.start()
    }

    /// `Connection: upgrade` with an `Upgrade` header (an h2c or WebSocket attempt, say).
    static func asksForUpgrade(_ head: HTTPRequestHead) -> Bool {
        head.headers.contains(name: "upgrade")
            && head.headers[canonicalForm: "connection"].contains { $0.utf8.count == 7 && $0.lowercased() == "upgrade" }
    }

    /// The endpoints forwarded on the event loop; `nil` for the ones the responder answers.
    static func forwardedEndpoint(method: HTTPRequest.Method, path: String) -> ProxyRequest.Endpoint? {
        if path.hasPrefix("/v1/") || path == "/v1" {
            switch (method, path) {
            case (.post, "/v1/chat/completions"): return .chatCompletions
            case (.post, "/v1/completions"): return .completions
            case (.post, "/v1/embeddings"): return .embeddings
            case (.get, "/v1/models"): return nil
            default: return .openAIPassthrough
            }
        }
        if path.hasPrefix("/api/") { return .ollamaNative }
        return nil
    }

    // MARK: The responder's path (in a task)

    private func respondInTask(
        _ head: HTTPRequestHead,
        method: HTTPRequest.Method,
        body: ByteBuffer,
        requestID: String
    ) {
        guard let context = self.context else { return }
        let headers = HTTPFields(head.headers)
        let request = Request(
            head: HTTPRequest(method: method, scheme: nil, authority: nil, path: head.uri, headerFields: headers),
            body: RequestBody(buffer: body)
        )
        let requestContext = BasicRequestContext(
            source: ApplicationRequestContextSource(channel: context.channel, logger: self.services.logger)
        )
        let responder = self.services.responder
        let eventLoop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: eventLoop)
        self.task = Task {
            let response = await responder.respond(request, context: requestContext, requestID: requestID)
            let contentLength = response.body.contentLength
            try? await eventLoop.submit {
                handler.value.sendHead(status: response.status, headers: response.headers, contentLength: contentLength)
            }.get()
            let writer = LoopBoundBodyWriter(handler: handler, eventLoop: eventLoop)
            do {
                try await response.body.write(writer)
            } catch {
                eventLoop.execute { handler.value.sendEnd(trailers: nil, abort: true) }
            }
        }
    }

    // MARK: Writing

    private func rejectBody(_ head: HTTPRequestHead, limit: Int) {
        self.state = .discarding
        self.keepAlive = false
        let requestID = self.requestIDs.next()
        self.sendError(.bodyTooLarge(limit: limit), requestID: requestID)
    }

    fileprivate func responseEnded(abort: Bool) {
        self.exchange = nil
        self.task = nil
        if case .responding = self.state { self.state = .idle }
        if abort || !self.keepAlive || self.quiescing {
            self.queued.removeAll()
            self.context?.close(promise: nil)
            return
        }
        self.drainQueue()
        if self.inputClosed, case .idle = self.state, self.queued.isEmpty {
            self.context?.close(promise: nil)
        }
    }

    /// Hands queued (pipelined) parts to the request reader until one starts a response.
    private func drainQueue() {
        guard !self.draining, let context = self.context else { return }
        self.draining = true
        defer { self.draining = false }
        while let part = self.queued.popFirst() {
            if case .body(let buffer) = part { self.queuedBytes -= buffer.readableBytes }
            self.handle(part, context: context)
            if case .responding = self.state { return }
        }
    }
}

extension SidecarConnectionHandler: ClientResponseSink {
    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    func sendHead(status: HTTPResponseStatus, headers: HTTPHeaders, contentLength: Int?) {
        guard let context = self.context else { return }
        let head = self.framer.head(
            status: status,
            headers: headers,
            contentLength: contentLength,
            closeConnection: !self.keepAlive,
            isHeadRequest: self.isHeadRequest,
            allocator: context.channel.allocator
        )
        context.write(self.wrapOutboundOut(head), promise: nil)
    }

    /// The responder's (HTTPTypes) head: framing headers are the sidecar's own.
    func sendHead(status: HTTPResponse.Status, headers: HTTPFields, contentLength: Int?) {
        var converted = HTTPHeaders(headers)
        let contentLength = contentLength ?? converted.first(name: "content-length").flatMap { Int($0) }
        converted.remove(name: "content-length")
        self.sendHead(
            status: HTTPResponseStatus(statusCode: status.code, reasonPhrase: status.reasonPhrase),
            headers: converted,
            contentLength: contentLength
        )
    }

    func sendBody(_ buffer: ByteBuffer, flush: Bool) {
        guard let context = self.context else { return }
        switch self.framer.framing {
        case .none:
            return
        case .length:
            context.write(self.wrapOutboundOut(buffer), promise: nil)
        case .chunked:
            // An empty chunk would end the body.
            guard buffer.readableBytes > 0 else { break }
            let size = HTTPWireFormat.chunkHeader(buffer.readableBytes, allocator: context.channel.allocator)
            context.write(self.wrapOutboundOut(size), promise: nil)
            context.write(self.wrapOutboundOut(buffer), promise: nil)
            context.write(self.wrapOutboundOut(HTTPWireFormat.chunkEnd), promise: nil)
        }
        if flush { context.flush() }
    }

    func sendEnd(trailers: HTTPHeaders?, abort: Bool) {
        guard let context = self.context else { return }
        if abort {
            context.flush()
            self.responseEnded(abort: true)
            return
        }
        if self.framer.framing == .chunked {
            let end = HTTPWireFormat.lastChunk(trailers: trailers, allocator: context.channel.allocator)
            context.write(self.wrapOutboundOut(end), promise: nil)
        }
        context.flush()
        self.responseEnded(abort: false)
    }

    /// The responder's (HTTPTypes) trailers.
    func sendEnd(trailers: HTTPFields?) {
        self.sendEnd(trailers: trailers.map { HTTPHeaders($0) }, abort: false)
    }

    func sendError(_ error: SidecarError, requestID: String) {
        let (headers, body) = self.services.responder.errorParts(error, requestID: requestID)
        self.sendHead(status: error.status, headers: headers, contentLength: body.readableBytes)
        self.sendBody(body, flush: false)
        self.sendEnd(trailers: nil, abort: false)
    }
}

/// Writes a responder's body to the connection from a task, one event-loop hop per write.
private struct LoopBoundBodyWriter: ResponseBodyWriter {
    let handler: NIOLoopBound<SidecarConnectionHandler>
    let eventLoop: any EventLoop

    mutating func write(_ buffer: ByteBuffer) async throws {
        let handler = self.handler
        try await self.eventLoop.submit { handler.value.sendBody(buffer, flush: true) }.get()
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        let handler = self.handler
        try await self.eventLoop.submit { handler.value.sendEnd(trailers: trailingHeaders) }.get()
    }
}
