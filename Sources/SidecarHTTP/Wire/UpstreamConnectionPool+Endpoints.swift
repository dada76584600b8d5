import NIOCore

/// What one endpoint's upstream entry asks of the connection pools, on each event loop.
package struct UpstreamEndpointSettings: Sendable, Equatable {
    /// Idle connections kept open (`warm_connections`), opened at start and refilled.
    package var warmConnections: Int
    /// Connections being opened at once (`max_connecting`; 0: no cap): a burst waits for these
    /// to finish opening (or for a connection to come free) rather than open a connection per
    /// request at the same moment, which a small server (Ollama, llama.cpp) answers slowly.
    package var maxConnecting: Int
    /// Offer HTTP/2 in the TLS handshake (ALPN `h2`, then `http/1.1`; `http2` in the
    /// configuration). An upstream that picks `h2` gets one connection carrying many calls at
    /// once; one that does not, or a plain `http://` upstream, is spoken to in HTTP/1.1.
    package var http2: Bool

    package init(warmConnections: Int = 0, maxConnecting: Int = 0, http2: Bool = true) {
        self.warmConnections = warmConnections
        self.maxConnecting = maxConnecting
        self.http2 = http2
    }

    /// One endpoint named by several upstreams: the most warm connections, the tightest cap,
    /// HTTP/2 only if every one of them allows it.
    package func merged(with other: Self) -> Self {
        let caps = [self.maxConnecting, other.maxConnecting].filter { $0 > 0 }
        return Self(
            warmConnections: max(self.warmConnections, other.warmConnections),
            maxConnecting: caps.min() ?? 0,
            http2: self.http2 && other.http2
        )
    }
}

extension UpstreamConnectionPool {
    /// Applies each endpoint's settings; endpoints not named get the defaults (no warm
    /// connections, no cap). Warm connections are opened now and refilled as requests take
    /// them or they close; one that fails to open holds refilling back (1 s, doubling to 30 s)
    /// so a down upstream is not hammered.
    package func configureEndpoints(_ endpoints: [(endpoint: UpstreamEndpoint, settings: UpstreamEndpointSettings)]) {
        self.eventLoop.assertInEventLoop()
        guard !self.isShutdown else { return }
        var settings: [UpstreamEndpoint: UpstreamEndpointSettings] = [:]
        for (endpoint, setting) in endpoints {
            settings[endpoint] = settings[endpoint].map { $0.merged(with: setting) } ?? setting
        }
        self.settings = settings
        for endpointState in self.endpoints.values {
            self.apply(settings[endpointState.endpoint] ?? UpstreamEndpointSettings(), to: endpointState)
        }
        for endpoint in settings.keys {
            let endpointState = self.endpointState(for: endpoint)
            endpointState.warmRetryAt = .uptimeNanoseconds(0)
            endpointState.warmBackoff = .zero
            self.refill(endpointState)
            self.serveWaiters(endpointState)  // a raised cap lets waiting calls connect
        }
    }

    func apply(_ settings: UpstreamEndpointSettings, to endpointState: EndpointState) {
        endpointState.warmTarget = settings.warmConnections
        endpointState.maxConnecting = settings.maxConnecting
        endpointState.offersHTTP2 = settings.http2 && endpointState.endpoint.useTLS
    }

    /// Opens connections until the idle ones and those being opened for it reach the target.
    func refill(_ endpointState: EndpointState) {
        guard endpointState.warmTarget > 0, !self.isShutdown, endpointState.waiters.isEmpty else { return }
        // One open HTTP/2 connection carries every call: it is the warm connection.
        guard endpointState.multiplexed.isEmpty else { return }
        let now = NIODeadline.now()
        guard now >= endpointState.warmRetryAt else {
            self.scheduleWarmRetry(endpointState)
            return
        }
        // A connect that fails at once moves `warmRetryAt` past now, which ends the loop.
        while endpointState.idle.count + endpointState.warming < endpointState.warmTarget,
            self.mayConnect(endpointState),
            endpointState.warmRetryAt <= now
        {
            endpointState.warming += 1
            endpointState.warmConnectsStarted += 1
            self.connect(endpointState, for: nil)
        }
    }

    private func scheduleWarmRetry(_ endpointState: EndpointState) {
        guard endpointState.warmRetry == nil else { return }
        endpointState.warmRetry = self.eventLoop.assumeIsolated().scheduleTask(deadline: endpointState.warmRetryAt) {
            endpointState.warmRetry = nil
            self.refill(endpointState)
        }
    }

    /// A warm connection finished opening (`opened`) or failed to.
    func warmConnectDone(_ endpointState: EndpointState, opened: Bool) {
        endpointState.warming -= 1
        if opened {
            endpointState.warmBackoff = .zero
        } else {
            self.backOffWarming(endpointState)
        }
    }

    /// No warm connection to `endpointState` before 1 s from now, then twice as long each time
    /// in a row, up to 30 s.
    func backOffWarming(_ endpointState: EndpointState) {
        let backoff =
            endpointState.warmBackoff == .zero ? .seconds(1) : min(endpointState.warmBackoff * 2, .seconds(30))
        endpointState.warmBackoff = backoff
        endpointState.warmRetryAt = .now() + backoff
    }
}

extension UpstreamConnectionPool {
    /// Idle connections beyond the warm ones close after the idle timeout.
    func scheduleReaper(at deadline: NIODeadline) {
        self.reaper = self.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.reapIdleConnections()
        }
    }

    func reapIdleConnections() {
        self.reaper = nil
        let now = NIODeadline.now()
        let timeout = self.configuration.idleConnectionTimeout
        var next: NIODeadline?
        for endpointState in self.endpoints.values {
            if let deadline = self.reapIdleHTTP2Connections(endpointState, now: now) {
                next = next.map { min($0, deadline) } ?? deadline
            }
            // The warm ones stay (the most recently used are at the end).
            while endpointState.idle.count > endpointState.warmTarget, let first = endpointState.idle.first,
                first.idleSince + timeout <= now
            {
                endpointState.idle.removeFirst()
                first.close()
            }
            if endpointState.idle.count > endpointState.warmTarget, let first = endpointState.idle.first {
                let deadline = first.idleSince + timeout
                next = next.map { min($0, deadline) } ?? deadline
            }
        }
        if let next, !self.isShutdown {
            self.scheduleReaper(at: next)
        }
    }
}
