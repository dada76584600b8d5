import NIOCore

/// The TLS handshake's deadline, and what a connect that failed means for the calls in line
/// behind it.
extension UpstreamConnection {
    /// TCP is up and the TLS handshake begins: it must finish by `deadline` (the connect timeout
    /// counts from the start of the TCP connect), else the connection closes as a connect that
    /// timed out. Without it, an upstream that accepts and never answers the handshake would
    /// hold the call, and every call waiting for that handshake, until their own deadlines.
    func armHandshakeDeadline(_ deadline: NIODeadline, on eventLoop: any EventLoop) {
        guard !self.tlsHandshakeDone, self.state != .closed else { return }
        self.handshakeDeadline = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            self.handshakeDeadline = nil
            guard !self.tlsHandshakeDone, self.state != .closed else { return }
            self.handshakeTimedOut = true
            if let call = self.call, self.pendingError == nil {
                self.pendingError = call.error(.connectTimeout, Self.handshakeTimeoutDetail(self.endpoint))
            }
            self.context?.close(promise: nil)
        }
    }

    /// The handshake finished (reported once, whichever of NIOSSL's event and the protocol
    /// choice comes first).
    func handshakeDidFinish() {
        self.handshakeDeadline?.cancel()
        self.handshakeDeadline = nil
        guard !self.tlsHandshakeDone else { return }
        self.tlsHandshakeDone = true
        self.pool.configuration.events.tlsHandshakeCompleted(self.endpoint)
    }

    /// How a TLS connection that closed before its handshake finished failed; `nil` when the
    /// handshake finished (or there was none) or the pool is shutting down.
    func handshakeFailure() -> (UpstreamError.Code, String)? {
        guard self.endpoint.useTLS, !self.tlsHandshakeDone, !self.pool.isShutdown else { return nil }
        if let error = self.pendingError, error.isConnectFailure { return (error.code, error.detail) }
        if self.handshakeTimedOut { return (.connectTimeout, Self.handshakeTimeoutDetail(self.endpoint)) }
        return (.connectFailed, "TLS handshake with \(self.endpoint.displayAddress) failed: connection closed")
    }

    /// Open and able to carry calls: connected, and past its TLS handshake if it has one.
    var isEstablished: Bool {
        switch self.state {
        case .idle, .active, .multiplexed:
            return !self.endpoint.useTLS || self.tlsHandshakeDone
        case .connecting, .closing, .closed:
            return false
        }
    }

    static func handshakeTimeoutDetail(_ endpoint: UpstreamEndpoint) -> String {
        "TLS handshake with \(endpoint.displayAddress) timed out"
    }
}

extension UpstreamConnectionPool {
    /// A connect to the endpoint timed out (`code` and `detail`, as its own call is told) and
    /// none of its other connections is established: nothing to it answers. The calls in line
    /// would each wait for a connect of their own after this one, a few at a time (the connect
    /// cap, or HTTP/2's one handshake before the rest), each as long again. They fail now with
    /// the same error, so that the forwarding layer backs off, retries or falls back at once.
    /// A connect that fails fast (refused, a TLS error) leaves them in line: the next connect
    /// costs them little, and after a passing refusal it serves them with no retry spent.
    func failWaiters(behind connection: UpstreamConnection, code: UpstreamError.Code, detail: String) {
        let endpointState = connection.endpointState
        guard code == .connectTimeout, !endpointState.waiters.isEmpty,
            !self.connections.values.contains(where: {
                $0 !== connection && $0.endpointState === endpointState && $0.isEstablished
            })
        else { return }
        let waiters = endpointState.waiters
        endpointState.waiters.removeAll()
        for waiter in waiters {
            self.deliverFailure(waiter, waiter.error(code, detail))
        }
    }
}
