import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS

/// One HTTP/1.1 connection to an upstream, and the last handler of its pipeline. The pipeline is built once per
/// connection; the handler is re-armed for each call. Event-loop confined.
package final class UpstreamConnection: ChannelDuplexHandler {
    package typealias InboundIn = HTTPClientResponsePart
    package typealias OutboundIn = HTTPClientRequestPart
    package typealias OutboundOut = HTTPClientRequestPart

    package enum State {
        case connecting
        case idle
        case active
        /// The TLS handshake chose HTTP/2: ``multiplexed`` carries the calls; this stays the
        /// pool's record of the socket.
        case multiplexed
        /// Close requested (not reusable), waiting for channelInactive.
        case closing
        case closed
    }

    package let pool: UpstreamConnectionPool
    package let endpointState: UpstreamConnectionPool.EndpointState
    package internal(set) var state: State = .connecting
    private(set) var context: ChannelHandlerContext?
    /// The call currently bound to this connection (while connecting: the call the connection was opened for).
    var call: UpstreamCall?
    var requestsStarted = 0
    /// Set by the pool when the connection goes back to the idle list.
    package var idleSince = NIODeadline.uptimeNanoseconds(0)
    /// Set when the pool shuts down while the connection is still connecting.
    package var closeWhenConnected = false
    /// Completes when the connect attempt completes (success or failure); used by shutdown.
    package var connectFuture: EventLoopFuture<Void>?
    /// When the pool opened it as a warm connection (none for one opened for a request).
    package var warmOpenedAt: NIODeadline?
    /// The HTTP/2 side of the connection, once the handshake chose `h2`.
    package internal(set) var multiplexed: UpstreamHTTP2Connection?
    /// Between TCP connect and the handshake's choice of protocol.
    var awaitingNegotiation = false
    /// Opened as a warm connection, counted as being opened until the handshake chose.
    var warmAwaitsNegotiation = false
    /// Whether a request was ever sent on it.
    package var hasCarriedARequest: Bool { self.requestsStarted > 0 }

    // Per-call state.
    private var callIsOnReusedConnection = false
    var headReceived = false
    var sawResponseBytes = false
    private var requestKeepAlive = true
    private var responseKeepAlive = true
    var pendingError: UpstreamError?

    // Reading / back-pressure / idle timeout.
    private var reading = UpstreamReadPacing()
    /// The TLS handshake finished (NIOSSL said so, or the protocol was chosen).
    var tlsHandshakeDone = false
    /// Closes the connection if its TLS handshake has not finished in time.
    var handshakeDeadline: Scheduled<Void>?
    var handshakeTimedOut = false

    package init(pool: UpstreamConnectionPool, endpointState: UpstreamConnectionPool.EndpointState) {
        self.pool = pool
        self.endpointState = endpointState
    }

    var endpoint: UpstreamEndpoint { self.endpointState.endpoint }

    /// True when the connection can take a request now.
    package var isUsable: Bool {
        self.state == .idle && (self.context?.channel.isActive ?? false)
    }

    // MARK: - Pool-facing API

    /// Binds the call this (connecting) connection is opened for.
    package func setCall(_ call: UpstreamCall) {
        self.call = call
    }

    /// Connect attempt completed successfully.
    package func didConnect() {
        guard self.state == .connecting else { return }
        if self.closeWhenConnected {
            self.state = .closing
            self.context?.close(promise: nil)
            return
        }
        self.state = .idle
        if let call = self.call {
            self.startRequest(call)
        } else {
            // The call this connection was opened for was cancelled meanwhile: hand it to whoever needs it.
            self.pool.release(self)
        }
    }

    /// Connect attempt failed; the pipeline never became active.
    package func didFailToConnect(_ error: any Error) {
        guard self.state == .connecting else { return }
        self.state = .closed
        let call = self.call
        self.call = nil
        let (code, detail) = self.connectFailure(error)
        self.pool.failWaiters(behind: self, code: code, detail: detail)
        self.pool.connectionClosed(self)
        if let call {
            self.pool.deliverFailure(call, call.error(code, detail))
        }
    }

    package func startRequest(_ call: UpstreamCall) {
        guard let context = self.context, self.state == .idle || self.state == .connecting else {
            // Cannot happen: the pool only hands out usable connections. Fail safely instead of crashing.
            self.pool.deliverFailure(call, call.error(.connectionClosed, "connection closed by upstream"))
            return
        }
        self.state = .active
        self.call = call
        call.connection = self
        call.state = .running
        self.callIsOnReusedConnection = self.requestsStarted > 0
        self.requestsStarted &+= 1
        self.headReceived = false
        self.sawResponseBytes = false
        self.responseKeepAlive = true
        self.pendingError = nil

        let request = call.request
        let head = request.head(host: self.endpointState.hostHeader)
        self.requestKeepAlive = head.isKeepAlive

        self.reading.start(paused: call.isReadingPaused)
        self.armReadTimer(context: context)

        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        if let body = request.body, body.readableBytes > 0 {
            context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// The bound call was cancelled: never reuse this connection (unless it had not connected yet, in which case
    /// nothing was sent and it is handed to the next caller once connected).
    package func callWasCancelled(_ call: UpstreamCall) {
        guard self.call === call else { return }
        self.call = nil
        switch self.state {
        case .connecting, .multiplexed:
            return
        case .idle, .active:
            self.close()
        case .closing, .closed:
            return
        }
    }

    package func setReadingPaused(_ paused: Bool) {
        if self.reading.setPaused(paused, context: self.context), self.call != nil, let context = self.context {
            self.armReadTimer(context: context)
        }
    }

    package func close() {
        switch self.state {
        case .closing, .closed:
            return
        case .connecting:
            self.closeWhenConnected = true
        case .idle, .active, .multiplexed:
            self.state = .closing
            self.context?.close(promise: nil)
        }
    }

    /// Pool shutdown: fails the bound call with .cancelled, closes, and returns a future completing once closed.
    package func shutdown(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let call = self.call
        self.call = nil
        self.multiplexed?.shutdown()
        var future = eventLoop.makeSucceededVoidFuture()
        switch self.state {
        case .connecting:
            self.closeWhenConnected = true
            if let connectFuture = self.connectFuture {
                future = connectFuture
            }
        case .idle, .active, .multiplexed, .closing:
            if let context = self.context {
                future = context.channel.closeFuture
                self.state = .closing
                context.close(promise: nil)
            }
        case .closed:
            break
        }
        if let call {
            call.fail(call.error(.cancelled, "connection pool shut down"))
        }
        return future
    }

    // MARK: - ChannelHandler

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        guard let call = self.call, self.state == .active else {
            // Unsolicited bytes on an idle connection: the upstream is confused; drop the connection.
            if self.state == .idle {
                self.close()
            }
            return
        }
        switch part {
        case .head(let head):
            if head.status.code < 200 && head.status.code != 101 {
                return
            }
            self.headReceived = true
            self.sawResponseBytes = true
            self.responseKeepAlive = head.isKeepAlive
            call.delegate?.upstreamDidReceiveHead(head)
        case .body(let buffer):
            call.delegate?.upstreamDidReceiveBody(buffer)
        case .end(let trailers):
            self.finishCall(call, context: context, trailers: trailers)
        }
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        if self.call != nil {
            self.reading.lastReadAt = .now()
        }
        context.fireChannelReadComplete()
    }

    package func read(context: ChannelHandlerContext) {
        self.reading.read(context: context, callIsReading: self.call != nil)
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
            self.handshakeDidFinish()
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.multiplexed != nil {
            // NIOHTTP2 and the streams deal with it; a connection error closes the socket.
            return
        }
        if let call = self.call, self.pendingError == nil, let mapped = self.mapError(error, call: call) {
            self.pendingError = mapped
        }
        if let sslError = error as? NIOSSLError, case .uncleanShutdown = sslError {
            // The TCP close follows; a close-delimited body may still end cleanly.
            return
        }
        self.close()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        let previousState = self.state
        self.state = .closed
        self.negotiationEnded(chose: false)
        self.handshakeDeadline?.cancel()
        self.handshakeDeadline = nil
        self.reading.cancelTimer()
        let call = self.call
        self.call = nil
        if let call, call.state != .done {
            // A bound call means it was neither finished, cancelled nor timed out (those unbind it first); the state
            // may already be .closing after a write/read error.
            let requestWasSent = previousState == .active || previousState == .closing
            if requestWasSent, self.callIsOnReusedConnection, !self.sawResponseBytes, !call.wasRetried {
                // Classic keep-alive race: the upstream closed the reused connection before answering. Retry once
                // on a fresh connection.
                call.wasRetried = true
                call.connection = nil
                self.pool.retry(call, endpointState: self.endpointState)
            } else {
                let detail = self.headReceived ? "connection closed mid-response" : "connection closed by upstream"
                let error = self.pendingError ?? call.error(.connectionClosed, detail)
                call.connection = nil
                self.pool.deliverFailure(call, error)
            }
        }
        if let (code, detail) = self.handshakeFailure() {
            self.pool.failWaiters(behind: self, code: code, detail: detail)
        }
        self.pool.connectionClosed(self)
        context.fireChannelInactive()
    }

    // MARK: - Internals

    private func finishCall(_ call: UpstreamCall, context: ChannelHandlerContext, trailers: HTTPHeaders?) {
        var reusable =
            self.responseKeepAlive && self.requestKeepAlive && self.pendingError == nil && context.channel.isActive
        if reusable, let options = context.channel.syncOptions,
            let buffered = try? options.getOption(.bufferedWritableBytes), buffered > 0
        {
            // The upstream answered before the request was fully written.
            reusable = false
        }
        self.call = nil
        _ = self.reading.setPaused(false, context: context)  // a held read goes on
        let delegate = call.takeDelegateForTerminal()
        if reusable {
            self.state = .idle
            self.pool.release(self)
        } else {
            self.close()
        }
        delegate?.upstreamDidFinish(trailers: trailers)
    }

    private func armReadTimer(context: ChannelHandlerContext) {
        guard let deadline = self.reading.timerDeadline(timeout: self.pool.configuration.idleTimeout) else { return }
        self.reading.timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.readTimerFired()
        }
    }

    private func readTimerFired() {
        self.reading.timer = nil
        guard let call = self.call, self.state == .active, !self.reading.isPaused, let context = self.context else {
            return
        }
        let timeout = self.pool.configuration.idleTimeout
        if self.reading.isSilent(for: timeout) {
            self.call = nil
            call.connection = nil
            self.close()
            let millis = timeout.nanoseconds / 1_000_000
            call.fail(call.error(.deadlineExceeded, "read timed out after \(millis) ms"))
        } else {
            self.armReadTimer(context: context)
        }
    }
}
