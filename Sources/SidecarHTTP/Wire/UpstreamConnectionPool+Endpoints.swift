import NIOCore

/// What one endpoint's upstream entry asks of the connection pools, on each event loop.
package struct UpstreamEndpointSettings: Sendable, Equatable {
    /// Idle connections kept open (`warm_connections`), opened at start and refilled.
    package var warmConnections: Int
    /// Connections being opened at once (`max_connecting`; 0: no cap): a burst waits for these
    /// to finish opening (or for a connection to come free) rather than open a connection per
    /// request at the same moment, which a small server (Ollama, llama.cpp) answers slowly.
    package var maxConnecting: Int

    package init(warmConnections: Int = 0, maxConnecting: Int = 0) {
        self.warmConnections = warmConnections
        self.maxConnecting = maxConnecting
    }

    /// One endpoint named by several upstreams: the most warm connections, the tightest cap.
    package func merged(with other: Self) -> Self {
        let caps = [self.maxConnecting, other.maxConnecting].filter { $0 > 0 }
        return Self(
            warmConnections: max(self.warmConnections, other.warmConnections),
            maxConnecting: caps.min() ?? 0
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
    }

    /// Opens connections until the idle ones and those being opened for it reach the target.
    func refill(_ endpointState: EndpointState) {
        guard endpointState.warmTarget > 0, !self.isShutdown, endpointState.waiters.isEmpty else { return }
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
