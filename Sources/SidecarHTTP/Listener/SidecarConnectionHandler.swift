import Logging
import NIOCore
import NIOHTTP1

/// One client connection, on its event loop. Reads a request (head and body, bounded), gives
/// it an id and hands it to the ``RequestDispatcher`` with itself as the response sink; frames
/// what comes back as HTTP/1.1 (``HTTPResponseFramer``).
///
/// One request is handled at a time: pipelined requests wait in a bounded queue until the
/// response before them has ended (this replaces NIO's `HTTPServerPipelineHandler`, which
/// toggles read interest, two `epoll_ctl` calls, on every request). On
/// `ChannelShouldQuiesceEvent` (graceful shutdown) an idle connection closes at once and a
/// busy one after its response.
package final class SidecarConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = HTTPServerRequestPart
    /// Responses leave as bytes: ``HTTPResponseFramer`` writes the head and the framing.
    package typealias OutboundOut = ByteBuffer

    private enum State {
        case idle
        case receiving(HTTPRequestHead, ByteBuffer)
        /// The body went over the limit: the 413 was sent, the rest is dropped.
        case discarding
        case responding
    }

    private let dispatcher: any RequestDispatcher
    private let limits: ListenerLimits
    private var state = State.idle
    private var context: ChannelHandlerContext?
    private var keepAlive = true
    private var isHeadRequest = false
    /// The request being answered.
    private var inFlight: (any InFlightRequest)?
    /// Counts dispatched requests, so a request answered at once is not taken for the one in flight.
    private var dispatched = 0
    private var requestIDs = RequestIDGenerator()
    private var framer = HTTPResponseFramer()
    /// The first-byte deadline of the upstream call in flight; one per connection (it coalesces tasks).
    private var headTimer: CoalescedDeadlineTimer?
    /// Parts of pipelined requests that arrived while a response was in flight.
    private var queued = CircularBuffer<HTTPServerRequestPart>()
    private var queuedBytes = 0
    private var draining = false
    private var quiescing = false
    /// The client shut down its sending side (the server allows half-closure): answer what was
    /// received, then close.
    private var inputClosed = false
    /// No byte of the next request has arrived yet.
    private var awaitingRequest = true
    /// When the request being read sent its first byte (`nil`: none is being read).
    private var requestStarted: NIODeadline?
    /// Since when the connection waits for a request.
    private var idleSince = NIODeadline.now()
    /// One timer for both read deadlines, re-armed only when it fires (coalesced: no timer is
    /// scheduled or cancelled per request).
    private var readTimer: Scheduled<Void>?

    /// How long a connection that has sent no request yet may still send one once the
    /// shutdown began.
    static let quiesceGrace = TimeAmount.milliseconds(500)
    /// The connection closed. Requests pipelined behind the response that closed it can still
    /// arrive, from the rest of the read being decoded: they are dropped, never dispatched.
    private var closed = false

    package init(dispatcher: any RequestDispatcher, limits: ListenerLimits) {
        self.dispatcher = dispatcher
        self.limits = limits
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.idleSince = .now()
        self.armReadTimer(at: self.idleSince + self.limits.idleConnection, context: context)
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        self.readTimer?.cancel()
        self.readTimer = nil
        self.context = nil
    }

    // MARK: Read deadlines

    /// Bytes came in (called by the decoder before it decodes them).
    package func bytesArrived() {
        guard self.awaitingRequest else { return }
        self.awaitingRequest = false
        let now = NIODeadline.now()
        self.requestStarted = now
        if let context = self.context { self.armReadTimer(at: now + self.limits.requestRead, context: context) }
    }

    private func armReadTimer(at deadline: NIODeadline, context: ChannelHandlerContext) {
        // A timer already set fires no later than the new deadline, and looks again then.
        guard self.readTimer == nil else { return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.readTimer = context.eventLoop.scheduleTask(deadline: deadline) {
            loopBound.value.readTimerFired()
        }
    }

    private func readTimerFired() {
        self.readTimer = nil
        guard let context = self.context else { return }
        let now = NIODeadline.now()
        if let started = self.requestStarted {
            let deadline = started + self.limits.requestRead
            guard now >= deadline else { return self.armReadTimer(at: deadline, context: context) }
            return self.requestReadTimedOut(context: context)
        }
        guard case .idle = self.state, self.queued.isEmpty, self.inFlight == nil else { return }
        let deadline = self.idleSince + self.limits.idleConnection
        guard now >= deadline else { return self.armReadTimer(at: deadline, context: context) }
        context.close(promise: nil)
    }

    /// A client too slow to send its request: 408 unless an answer has begun, then close.
    private func requestReadTimedOut(context: ChannelHandlerContext) {
        self.limits.logger.debug("client request read timed out")
        self.requestStarted = nil
        switch self.state {
        case .idle, .receiving:
            self.state = .responding
            self.keepAlive = false
            self.queued.removeAll()
            self.dispatcher.reject(.requestTimeout, requestID: self.requestIDs.next(), sink: self)
        case .discarding, .responding:
            context.close(promise: nil)
        }
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.closed else { return }
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
        if self.queuedBytes > self.limits.maxBodyBytes + (1 << 20)
            || self.queued.count > 1024
        {
            context.close(promise: nil)
        }
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            // The sidecar never switches protocols or tunnels, and NIO's decoder stops after an
            // upgrade or CONNECT request: answer it over HTTP/1.1, then close.
            self.keepAlive = head.isKeepAlive && !Self.asksForUpgrade(head) && head.method != .CONNECT
            self.isHeadRequest = head.method == .HEAD
            let limit = self.limits.maxBodyBytes
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
            let limit = self.limits.maxBodyBytes
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
            self.requestStarted = nil
            switch self.state {
            case .receiving(let head, let body):
                self.state = .responding
                if let problem = RequestTarget.problem(head.uri) {
                    // Not a plain path: refused before anything reads it (``RequestTarget``).
                    self.keepAlive = false
                    return self.dispatcher.reject(
                        .badTarget(reason: problem),
                        requestID: self.requestIDs.next(),
                        sink: self
                    )
                }
                self.dispatch(head, body: body, context: context)
            case .discarding:
                self.state = .idle
            case .idle, .responding:
                return
            }
        }
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
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
        case .idle where self.dispatched == 0 || self.requestStarted != nil:
            // Accepted as the shutdown began, or a request partly read: its request is likely on
            // the way (closing now would reset it). Answer it, then close; close if none comes.
            self.keepAlive = false
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: Self.quiesceGrace) {
                let handler = loopBound.value
                guard case .idle = handler.state, handler.requestStarted == nil, let context = handler.context
                else { return }
                context.close(promise: nil)
            }
        case .idle: context.close(promise: nil)
        case .receiving, .responding, .discarding: self.keepAlive = false
        }
    }

    package func channelInactive(context: ChannelHandlerContext) {
        self.closed = true
        self.inFlight?.cancel()
        self.inFlight = nil
        self.headTimer?.stop()
        self.headTimer = nil
        context.fireChannelInactive()
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.inFlight?.writabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.limits.logger.debug("client connection error", metadata: ["error": "\(error)"])
        // A request cut short by the close itself (decoded as end of input): no one to answer.
        guard !self.closed, context.channel.isActive else { return }
        // Bytes that are not HTTP/1.1: answer 400 (OpenAI-shaped) unless a response has begun, then close.
        if let parserError = error as? HTTPParserError {
            switch self.state {
            case .idle, .receiving:
                self.state = .responding
                self.keepAlive = false
                self.requestStarted = nil
                self.queued.removeAll()
                return self.dispatcher.reject(
                    parserError == .headerOverflow ? .headersTooLarge : .notHTTP(detail: "\(error)"),
                    requestID: self.requestIDs.next(),
                    sink: self
                )
            case .discarding, .responding:
                break
            }
        }
        context.close(promise: nil)
    }

    // MARK: Dispatch

    private func dispatch(_ head: HTTPRequestHead, body: ByteBuffer, context: ChannelHandlerContext) {
        let requestID =
            RequestIDGenerator.clientProvided(head.headers.first(name: "x-request-id")) ?? self.requestIDs.next()
        let headTimer = self.headTimer ?? CoalescedDeadlineTimer(eventLoop: context.eventLoop)
        self.headTimer = headTimer
        self.dispatched &+= 1
        let number = self.dispatched
        let request = ReceivedRequest(head: head, body: body, requestID: requestID)
        let connection = ListenerConnection(channel: context.channel, headTimer: headTimer)
        let inFlight = self.dispatcher.dispatch(request, connection: connection, sink: self)
        // Answered at once (an error), and perhaps the next pipelined request started since.
        guard number == self.dispatched, case .responding = self.state else { return }
        self.inFlight = inFlight
    }

    /// `Connection: upgrade` with an `Upgrade` header (an h2c or WebSocket attempt, say).
    package static func asksForUpgrade(_ head: HTTPRequestHead) -> Bool {
        head.headers.contains(name: "upgrade")
            && head.headers[canonicalForm: "connection"].contains { $0.utf8.count == 7 && $0.lowercased() == "upgrade" }
    }

    // MARK: Writing

    private func rejectBody(_ head: HTTPRequestHead, limit: Int) {
        self.state = .discarding
        self.keepAlive = false
        self.dispatcher.reject(.bodyTooLarge(limit: limit), requestID: self.requestIDs.next(), sink: self)
    }

    fileprivate func responseEnded(abort: Bool) {
        self.inFlight = nil
        if case .responding = self.state { self.state = .idle }
        if abort || !self.keepAlive || self.quiescing {
            self.queued.removeAll()
            self.context?.close(promise: nil)
            return
        }
        self.drainQueue()
        if self.inputClosed, case .idle = self.state, self.queued.isEmpty {
            self.context?.close(promise: nil)
            return
        }
        guard let context = self.context, self.requestStarted == nil else { return }
        switch self.state {
        case .idle where self.queued.isEmpty:
            // Waiting for the next request: idle until its first byte.
            self.awaitingRequest = true
            self.idleSince = .now()
            self.armReadTimer(at: self.idleSince + self.limits.idleConnection, context: context)
        case .receiving:
            // A pipelined request only partly here: its read deadline starts now.
            let now = NIODeadline.now()
            self.requestStarted = now
            self.armReadTimer(at: now + self.limits.requestRead, context: context)
        case .idle, .discarding, .responding:
            break
        }
    }

    /// Hands queued (pipelined) parts to the request reader until one starts a response.
    private func drainQueue() {
        guard !self.draining, !self.closed, let context = self.context else { return }
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
    package var isWritable: Bool { self.context?.channel.isWritable ?? false }

    package func sendHead(status: HTTPResponseStatus, headers: HTTPHeaders, contentLength: Int?) {
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

    package func sendBody(_ buffer: ByteBuffer, flush: Bool) {
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

    package func sendEnd(trailers: HTTPHeaders?, abort: Bool) {
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
}
