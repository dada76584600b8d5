import NIOCore

/// Handle to one in-flight call. Event-loop confined (not Sendable).
package final class UpstreamCall {
    package enum State {
        /// Waiting in the endpoint's FIFO queue for a connection.
        case queued
        /// Bound to a connection that is still connecting (or, after a stale retry, reconnecting).
        case connecting
        /// Request written (or being written) on `connection`; waiting for / reading the response.
        case running
        /// Terminal: finished, failed or cancelled. No delegate call happens any more.
        case done
    }

    package let request: UpstreamWireRequest
    /// Strong until the terminal call; cleared afterwards so a delegate/call cycle never outlives the call.
    private(set) var delegate: (any UpstreamResponseDelegate)?
    package let pool: UpstreamConnectionPool
    package var state: State = .queued
    /// The connection the call is bound to (connecting or running).
    package var connection: UpstreamConnection?
    /// The HTTP/2 stream carrying the call (running on an ``UpstreamHTTP2Connection``).
    package var stream: UpstreamHTTP2Stream?
    package var isReadingPaused = false
    /// True once the call was transparently retried after a stale keep-alive connection failed.
    package var wasRetried = false

    package init(pool: UpstreamConnectionPool, request: UpstreamWireRequest, delegate: any UpstreamResponseDelegate) {
        self.pool = pool
        self.request = request
        self.delegate = delegate
    }

    /// Stops the call: no delegate calls at all afterwards (not even a failure); the connection is closed, never
    /// reused. Idempotent; no-op after the terminal call.
    package func cancel() {
        self.pool.eventLoop.preconditionInEventLoop()
        switch self.state {
        case .done:
            return
        case .queued:
            self.state = .done
            self.delegate = nil
            self.pool.removeWaiter(self)
        case .connecting, .running:
            self.state = .done
            self.delegate = nil
            let connection = self.connection
            self.connection = nil
            connection?.callWasCancelled(self)
            let stream = self.stream
            self.stream = nil
            stream?.callWasCancelled(self)
        }
    }

    /// Back-pressure: while paused, the pool stops reading from the upstream socket; resuming reads again. The idle
    /// timeout does not fire while paused.
    package func setReadingPaused(_ paused: Bool) {
        self.pool.eventLoop.preconditionInEventLoop()
        guard self.state != .done, self.isReadingPaused != paused else { return }
        self.isReadingPaused = paused
        if self.state == .running {
            self.connection?.setReadingPaused(paused)
            self.stream?.setReadingPaused(paused)
        }
    }

    /// Marks the call terminal and returns the delegate to notify (nil when already terminal).
    package func takeDelegateForTerminal() -> (any UpstreamResponseDelegate)? {
        guard self.state != .done else { return nil }
        self.state = .done
        self.connection = nil
        self.stream = nil
        let delegate = self.delegate
        self.delegate = nil
        return delegate
    }

    /// Fails the call (no-op when terminal).
    package func fail(_ error: UpstreamError) {
        self.takeDelegateForTerminal()?.upstreamDidFail(error)
    }

    package func error(_ code: UpstreamError.Code, _ detail: String) -> UpstreamError {
        UpstreamError(code, upstream: self.request.upstreamName, detail: detail)
    }
}
