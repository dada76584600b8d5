import NIOCore

/// The pool's side of HTTP/2: connections that chose `h2` carry calls as streams. A call goes to
/// the newest HTTP/2 connection with a free stream before any HTTP/1.1 connection; once an
/// endpoint has chosen HTTP/2, a burst waits for the connection being opened instead of opening
/// one per call, so a burst after an idle minute costs one handshake, not one per call.
extension UpstreamConnectionPool {
    /// A connection's TLS handshake chose HTTP/2: the call it was opened for (if any) and the
    /// calls in line start on it.
    func adoptHTTP2(_ connection: UpstreamHTTP2Connection, call: UpstreamCall?) {
        let endpointState = connection.endpointState
        endpointState.speaksHTTP2 = true
        endpointState.multiplexed.append(connection)
        if let call, call.state != .done {
            connection.startStream(call)
        }
        self.serveWaiters(endpointState)
        self.refill(endpointState)
        self.scheduleIdleReaping(connection)
    }

    /// Starts calls in line on HTTP/2 connections with free streams.
    func serveWaitersOnHTTP2(_ endpointState: EndpointState) {
        guard !endpointState.waiters.isEmpty, !endpointState.multiplexed.isEmpty else { return }
        for connection in endpointState.multiplexed.reversed() {
            while connection.hasCapacity, let waiter = endpointState.waiters.popFirst() {
                connection.startStream(waiter)
            }
        }
    }

    /// A stream ended (or the upstream allowed more at once): the next call in line may start.
    func http2StreamFreed(_ connection: UpstreamHTTP2Connection) {
        let endpointState = connection.endpointState
        if self.isShutdown { return }
        self.serveWaiters(endpointState)
        if connection.openStreams == 0 {
            self.scheduleIdleReaping(connection)
        }
    }

    /// The upstream said GOAWAY or the connection failed: no new stream goes to it; calls in line
    /// open a new connection.
    func http2ConnectionGoingAway(_ connection: UpstreamHTTP2Connection) {
        let endpointState = connection.endpointState
        endpointState.multiplexed.removeAll { $0 === connection }
        if self.isShutdown { return }
        self.serveWaiters(endpointState)
        self.refill(endpointState)
    }

    /// Closes HTTP/2 connections with no stream open for the idle timeout, except the last one
    /// of an endpoint that keeps warm connections. Returns when to look again.
    func reapIdleHTTP2Connections(_ endpointState: EndpointState, now: NIODeadline) -> NIODeadline? {
        let timeout = self.configuration.idleConnectionTimeout
        var next: NIODeadline?
        for connection in endpointState.multiplexed where connection.openStreams == 0 {
            let keep = endpointState.warmTarget > 0 && endpointState.multiplexed.count == 1
            if keep { continue }
            if connection.idleSince + timeout <= now {
                connection.close()
                endpointState.multiplexed.removeAll { $0 === connection }
            } else {
                let deadline = connection.idleSince + timeout
                next = next.map { min($0, deadline) } ?? deadline
            }
        }
        return next
    }

    private func scheduleIdleReaping(_ connection: UpstreamHTTP2Connection) {
        if self.reaper == nil, connection.openStreams == 0 {
            self.scheduleReaper(at: connection.idleSince + self.configuration.idleConnectionTimeout)
        }
    }
}
