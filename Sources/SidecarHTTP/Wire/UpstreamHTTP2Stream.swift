import NIOCore
import NIOHTTP1
import NIOHTTP2

/// One call carried as one stream of an ``UpstreamHTTP2Connection``: the last handler of the
/// stream's channel, after NIOHTTP2's HTTP/1 codec, so it sends and reads the same request and
/// response parts as ``UpstreamConnection`` and tells its call the same things (head, body
/// parts, then one of finish or fail). The idle timeout and back-pressure are the stream's own:
/// while reading is paused the stream reads nothing, its flow-control window fills and the
/// upstream stops sending on that stream alone. Event-loop confined.
package final class UpstreamHTTP2Stream: ChannelDuplexHandler {
    package typealias InboundIn = HTTPClientResponsePart
    package typealias OutboundIn = HTTPClientRequestPart
    package typealias OutboundOut = HTTPClientRequestPart

    private let connection: UpstreamHTTP2Connection
    private var call: UpstreamCall?
    private let isOnReusedConnection: Bool
    private var context: ChannelHandlerContext?
    private var sawResponseBytes = false
    private var headReceived = false
    private var pendingError: UpstreamError?
    private var reading = UpstreamReadPacing()
    private var isClosed = false

    init(connection: UpstreamHTTP2Connection, call: UpstreamCall, isOnReusedConnection: Bool) {
        self.connection = connection
        self.call = call
        self.isOnReusedConnection = isOnReusedConnection
        self.reading.start(paused: call.isReadingPaused)
    }

    private var pool: UpstreamConnectionPool { self.connection.pool }

    // MARK: - Call-facing API

    /// The call was cancelled: the stream is reset (the connection and its other streams go on).
    func callWasCancelled(_ call: UpstreamCall) {
        guard self.call === call else { return }
        self.call = nil
        self.context?.close(promise: nil)
    }

    func setReadingPaused(_ paused: Bool) {
        if self.reading.setPaused(paused, context: self.context), let context = self.context {
            self.armReadTimer(context: context)
        }
    }

    /// The stream could not be opened (the connection was closing): the call goes to another
    /// connection once, as a call on a stale HTTP/1.1 connection does.
    func streamFailedToOpen(_ error: any Error) {
        self.closed(error: nil)
    }

    func failForShutdown() {
        guard let call = self.call else { return }
        self.call = nil
        call.fail(call.error(.cancelled, "connection pool shut down"))
        self.context?.close(promise: nil)
    }

    // MARK: - ChannelHandler

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    package func channelActive(context: ChannelHandlerContext) {
        guard let call = self.call else {
            context.close(promise: nil)
            return
        }
        let request = call.request
        // NIOHTTP2 makes `:authority` of `host` and drops the headers HTTP/2 forbids.
        let head = request.head(host: self.connection.endpointState.hostHeader)
        self.reading.lastReadAt = .now()
        self.armReadTimer(context: context)
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        if let body = request.body, body.readableBytes > 0 {
            context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let call = self.call else { return }
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.sawResponseBytes = true
            if head.status.code < 200 {
                return
            }
            self.headReceived = true
            call.delegate?.upstreamDidReceiveHead(head)
        case .body(let buffer):
            call.delegate?.upstreamDidReceiveBody(buffer)
        case .end(let trailers):
            self.call = nil
            self.reading.cancelTimer()
            let delegate = call.takeDelegateForTerminal()
            delegate?.upstreamDidFinish(trailers: trailers)
        }
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        self.reading.lastReadAt = .now()
        context.fireChannelReadComplete()
    }

    package func read(context: ChannelHandlerContext) {
        self.reading.read(context: context, callIsReading: self.call != nil)
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let call = self.call, self.pendingError == nil {
            self.pendingError = self.mapError(error, call: call)
        }
        context.close(promise: nil)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        self.closed(error: self.pendingError)
        context.fireChannelInactive()
    }

    // MARK: - Internals

    private func closed(error: UpstreamError?) {
        guard !self.isClosed else { return }
        self.isClosed = true
        self.reading.cancelTimer()
        let call = self.call
        self.call = nil
        self.connection.streamClosed(self)
        guard let call, call.state != .done else { return }
        call.stream = nil
        if !self.sawResponseBytes, !call.wasRetried, self.isRetryable(error) {
            // The upstream refused the stream or went away before answering: nothing of the
            // request was acted on. Try it once more, as on a stale keep-alive connection.
            call.wasRetried = true
            self.pool.dispatch(call)
            return
        }
        let detail = self.headReceived ? "stream closed mid-response" : "stream closed by upstream"
        self.pool.deliverFailure(call, error ?? call.error(.connectionClosed, detail))
    }

    private func isRetryable(_ error: UpstreamError?) -> Bool {
        guard let error else {
            // Closed with no error of its own: the connection went (GOAWAY or close).
            return self.isOnReusedConnection || self.connection.isGoingAway
        }
        return error.code == .connectionClosed && error.detail == Self.refusedDetail
    }

    private static let refusedDetail = "stream refused by upstream"

    private func mapError(_ error: any Error, call: UpstreamCall) -> UpstreamError? {
        if let closed = error as? NIOHTTP2Errors.StreamClosed {
            if closed.errorCode == .refusedStream {
                return call.error(.connectionClosed, Self.refusedDetail)
            }
            return call.error(.connectionClosed, "stream reset by upstream (\(closed.errorCode))")
        }
        if error is IOError || error is ChannelError {
            return nil
        }
        self.sawResponseBytes = true
        return call.error(.other, "malformed response: \(error)")
    }

    private func armReadTimer(context: ChannelHandlerContext) {
        guard self.call != nil, let deadline = self.reading.timerDeadline(timeout: self.pool.configuration.idleTimeout)
        else { return }
        self.reading.timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.readTimerFired()
        }
    }

    private func readTimerFired() {
        self.reading.timer = nil
        guard let call = self.call, !self.reading.isPaused, let context = self.context else { return }
        let timeout = self.pool.configuration.idleTimeout
        if self.reading.isSilent(for: timeout) {
            self.call = nil
            call.stream = nil
            context.close(promise: nil)
            let millis = timeout.nanoseconds / 1_000_000
            call.fail(call.error(.deadlineExceeded, "read timed out after \(millis) ms"))
        } else {
            self.armReadTimer(context: context)
        }
    }
}
