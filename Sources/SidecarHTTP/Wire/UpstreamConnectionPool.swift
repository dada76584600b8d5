import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS

/// HTTP/1.1 client connection pool for one event loop; event-loop confined. Every connection it owns lives on
/// `eventLoop`, and every delegate call happens there.
package final class UpstreamConnectionPool {
    /// Connections, idle list and FIFO waiters for one endpoint.
    package final class EndpointState {
        package let endpoint: UpstreamEndpoint
        package let hostHeader: String
        /// Pre-parsed address when the host is an IP literal (no DNS, no happy eyeballs).
        package let literalAddress: SocketAddress?
        /// SNI name; nil for IP literals.
        package let serverHostname: String?
        /// Connecting + active + idle connections.
        package var connectionCount = 0
        /// Connections being opened now, and how many may be at once (0: no cap).
        package var connecting = 0
        package var maxConnecting = 0
        /// Most recently used last; the reaper closes from the front.
        package var idle: [UpstreamConnection] = []
        package var waiters = CircularBuffer<UpstreamCall>()
        /// Idle connections to keep open (``UpstreamConnectionPool/warm(_:)``), and how many are
        /// being opened for that now.
        package var warmTarget = 0
        var warming = 0
        /// After a warm connection failed to open: no other before this, then twice as long.
        var warmRetryAt = NIODeadline.uptimeNanoseconds(0)
        var warmBackoff = TimeAmount.zero
        var warmRetry: Scheduled<Void>?
        /// Every warm connection started; for tests.
        package var warmConnectsStarted = 0
        /// Whether its TLS handshakes offer HTTP/2 (`http2` and an `https://` endpoint).
        package var offersHTTP2 = false
        /// What the last TLS handshake with it chose, once one has: HTTP/2 (true) or HTTP/1.1.
        package var speaksHTTP2: Bool?
        /// Connections whose TLS handshake (and protocol choice) is under way.
        var negotiating = 0
        /// Open HTTP/2 connections taking new streams.
        package var multiplexed: [UpstreamHTTP2Connection] = []

        /// While it speaks HTTP/2, or may (it is offered and no handshake has answered yet), a
        /// call waits for the connection being opened (one handshake, many streams) instead of
        /// opening one of its own. Against an HTTP/1.1 upstream that costs only the first burst
        /// one handshake's wait.
        var mayTakeHTTP2: Bool { self.offersHTTP2 && self.speaksHTTP2 != false }

        package init(endpoint: UpstreamEndpoint) {
            self.endpoint = endpoint
            self.hostHeader = endpoint.hostHeader
            let isLiteral = endpoint.isIPLiteral
            self.literalAddress = isLiteral ? try? SocketAddress(ipAddress: endpoint.host, port: endpoint.port) : nil
            self.serverHostname = isLiteral ? nil : endpoint.host
        }
    }

    package let eventLoop: any EventLoop
    package let configuration: UpstreamConnectionPools.Configuration
    private let sslContexts: UpstreamTLSContexts?
    private let sslContextError: String?
    var endpoints: [UpstreamEndpoint: EndpointState] = [:]
    /// What each endpoint's upstream entry asks of the pool (``configureEndpoints(_:)``).
    var settings: [UpstreamEndpoint: UpstreamEndpointSettings] = [:]
    private var lastEndpointState: EndpointState?
    private(set) var connections: [ObjectIdentifier: UpstreamConnection] = [:]
    var reaper: Scheduled<Void>?
    private(set) var isShutdown = false
    /// > 0 while inside `execute`: failures are then delivered on the next loop tick (no re-entrant delegate calls
    /// before the caller has its UpstreamCall).
    private var executeDepth = 0

    package init(
        eventLoop: any EventLoop,
        configuration: UpstreamConnectionPools.Configuration,
        sslContexts: UpstreamTLSContexts?,
        sslContextError: String?
    ) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.sslContexts = sslContexts
        self.sslContextError = sslContextError
    }

    /// Number of open (connecting, active or idle) connections; for tests and metrics.
    package var openConnectionCount: Int { self.connections.count }

    /// The state kept for `endpoint`; for tests.
    package func endpointStateForTests(_ endpoint: UpstreamEndpoint) -> EndpointState {
        self.endpointState(for: endpoint)
    }

    /// Number of idle connections for `endpoint`; for tests and metrics.
    package func idleConnectionCount(for endpoint: UpstreamEndpoint) -> Int {
        self.endpoints[endpoint]?.idle.count ?? 0
    }

    package func execute(_ request: UpstreamWireRequest, delegate: any UpstreamResponseDelegate) -> UpstreamCall {
        self.eventLoop.assertInEventLoop()
        let call = UpstreamCall(pool: self, request: request, delegate: delegate)
        self.executeDepth += 1
        defer { self.executeDepth -= 1 }
        self.dispatch(call)
        return call
    }

    /// Starts `call` on a free HTTP/2 stream or idle connection, else opens a connection for it
    /// or puts it in line.
    func dispatch(_ call: UpstreamCall) {
        let endpointState = self.endpointState(for: call.request.endpoint)
        if self.isShutdown {
            self.deliverFailure(call, call.error(.cancelled, "connection pool shut down"))
            return
        }
        if let connection = endpointState.multiplexed.last(where: { $0.hasCapacity }) {
            connection.startStream(call)
            return
        }
        while let connection = endpointState.idle.popLast() {
            if connection.isUsable {
                connection.startRequest(call)
                self.refill(endpointState)
                return
            }
            connection.close()
        }
        if self.mayConnect(endpointState) {
            self.connect(endpointState, for: call)
        } else {
            call.connection = nil
            call.state = .queued
            endpointState.waiters.append(call)
        }
    }

    // MARK: - Internals used by UpstreamConnection / UpstreamCall

    /// A connection finished a call and may be reused: next waiter, idle list, or closed.
    package func release(_ connection: UpstreamConnection) {
        let endpointState = connection.endpointState
        if self.isShutdown {
            connection.close()
            return
        }
        if let waiter = endpointState.waiters.popFirst() {
            connection.startRequest(waiter)
            return
        }
        guard endpointState.idle.count < self.configuration.maxIdleConnectionsPerEndpoint else {
            connection.close()
            return
        }
        connection.idleSince = .now()
        endpointState.idle.append(connection)
        if self.reaper == nil {
            self.scheduleReaper(at: connection.idleSince + self.configuration.idleConnectionTimeout)
        }
    }

    /// A connection is gone (connect failure or channelInactive).
    package func connectionClosed(_ connection: UpstreamConnection) {
        guard self.connections.removeValue(forKey: ObjectIdentifier(connection)) != nil else { return }
        let endpointState = connection.endpointState
        endpointState.connectionCount -= 1
        if let multiplexed = connection.multiplexed {
            endpointState.multiplexed.removeAll { $0 === multiplexed }
        }
        if let opened = connection.warmOpenedAt, !connection.hasCarriedARequest,
            NIODeadline.now() - opened < .seconds(1)
        {
            // Opened warm and closed unused at once (an upstream that accepts and hangs up): back
            // off as for a failed connect, so it is not hammered.
            self.backOffWarming(endpointState)
        }
        if let index = endpointState.idle.firstIndex(where: { $0 === connection }) {
            endpointState.idle.remove(at: index)
        }
        self.serveWaiters(endpointState)
        self.refill(endpointState)
    }

    package func retry(_ call: UpstreamCall, endpointState: EndpointState) {
        if self.isShutdown {
            self.deliverFailure(call, call.error(.cancelled, "connection pool shut down"))
            return
        }
        guard self.underConnectCap(endpointState) else {
            // First in line: it was already being served.
            call.connection = nil
            call.state = .queued
            endpointState.waiters.prepend(call)
            return
        }
        self.connect(endpointState, for: call)
    }

    package func removeWaiter(_ call: UpstreamCall) {
        let endpointState = self.endpointState(for: call.request.endpoint)
        if let index = endpointState.waiters.firstIndex(where: { $0 === call }) {
            endpointState.waiters.remove(at: index)
        }
    }

    package func deliverFailure(_ call: UpstreamCall, _ error: UpstreamError) {
        call.connection = nil
        if self.executeDepth > 0 {
            self.eventLoop.assumeIsolated().execute {
                call.fail(error)
            }
        } else {
            call.fail(error)
        }
    }

    /// Closes everything; active and queued calls fail with .cancelled. The future completes once closed.
    package func shutdown() -> EventLoopFuture<Void> {
        self.eventLoop.assertInEventLoop()
        guard !self.isShutdown else { return self.eventLoop.makeSucceededVoidFuture() }
        self.isShutdown = true
        self.reaper?.cancel()
        self.reaper = nil
        var futures: [EventLoopFuture<Void>] = []
        for endpointState in self.endpoints.values {
            let waiters = endpointState.waiters
            endpointState.waiters.removeAll()
            for waiter in waiters {
                waiter.fail(waiter.error(.cancelled, "connection pool shut down"))
            }
            endpointState.idle.removeAll()
            endpointState.warmRetry?.cancel()
            endpointState.warmRetry = nil
        }
        for connection in Array(self.connections.values) {
            futures.append(connection.shutdown(on: self.eventLoop))
        }
        return EventLoopFuture.andAllComplete(futures, on: self.eventLoop)
    }

    // MARK: - Private

    func endpointState(for endpoint: UpstreamEndpoint) -> EndpointState {
        if let last = self.lastEndpointState, last.endpoint == endpoint {
            return last
        }
        let state: EndpointState
        if let existing = self.endpoints[endpoint] {
            state = existing
        } else {
            state = EndpointState(endpoint: endpoint)
            self.apply(self.settings[endpoint] ?? UpstreamEndpointSettings(), to: state)
            self.endpoints[endpoint] = state
        }
        self.lastEndpointState = state
        return state
    }

    func serveWaiters(_ endpointState: EndpointState) {
        self.serveWaitersOnHTTP2(endpointState)
        while self.mayConnect(endpointState), let waiter = endpointState.waiters.popFirst() {
            self.connect(endpointState, for: waiter)
        }
    }

    /// Whether another connection to the endpoint may be opened now: under the connection bound
    /// and the cap on connections being opened at once.
    func mayConnect(_ endpointState: EndpointState) -> Bool {
        endpointState.connectionCount < self.configuration.maxConnectionsPerEndpoint
            && self.underConnectCap(endpointState)
            && !(endpointState.mayTakeHTTP2 && endpointState.connecting + endpointState.negotiating > 0)
    }

    /// Whether fewer connections to the endpoint are being opened than its cap allows.
    private func underConnectCap(_ endpointState: EndpointState) -> Bool {
        endpointState.maxConnecting == 0 || endpointState.connecting < endpointState.maxConnecting
    }

    /// Opens a connection for `call`, or a warm one (`nil`) that goes to the idle list.
    func connect(_ endpointState: EndpointState, for call: UpstreamCall?) {
        let connection = UpstreamConnection(pool: self, endpointState: endpointState)
        endpointState.connectionCount += 1
        endpointState.connecting += 1
        self.connections[ObjectIdentifier(connection)] = connection
        if let call {
            connection.setCall(call)
            call.connection = connection
            call.state = .connecting
        }
        let warm = call == nil

        let endpoint = endpointState.endpoint
        let sslContext: NIOSSLContext?
        if endpoint.useTLS {
            // The upstream's own roots (`ca_file`), else the system's.
            guard let contexts = endpoint.trust?.contexts ?? self.sslContexts else {
                let reason = self.sslContextError ?? "no TLS context"
                let detail = "TLS handshake with \(endpoint.displayAddress) failed: \(reason)"
                endpointState.connecting -= 1
                if warm { self.warmConnectDone(endpointState, opened: false) }
                connection.didFailToConnect(UpstreamConnectError(detail: detail))
                return
            }
            sslContext = contexts.context(offeringHTTP2: endpointState.offersHTTP2)
        } else {
            sslContext = nil
        }
        let serverHostname = endpointState.serverHostname
        // The connect timeout covers the TCP connect and the TLS handshake together.
        let connectDeadline = NIODeadline.now() + self.configuration.connectTimeout
        let negotiates = sslContext != nil && endpointState.offersHTTP2
        let boundConnection = NIOLoopBound(connection, eventLoop: self.eventLoop)
        let bootstrap = ClientBootstrap(group: self.eventLoop)
            .connectTimeout(self.configuration.connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                do {
                    let sync = channel.pipeline.syncOperations
                    if let sslContext {
                        try sync.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverHostname))
                    }
                    if negotiates {
                        // HTTP/1.1 or HTTP/2 handlers go in once the handshake has chosen.
                        try sync.addHandler(
                            ApplicationProtocolNegotiationHandler { result, channel in
                                boundConnection.value.protocolNegotiated(result, channel: channel)
                            }
                        )
                        try sync.addHandler(boundConnection.value)
                        return channel.eventLoop.makeSucceededVoidFuture()
                    }
                    try sync.addHandler(UpstreamRequestEncoder())
                    try sync.addHandler(
                        UpstreamResponseDecoderHandler(
                            HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .drop)
                        )
                    )
                    try sync.addHandler(boundConnection.value)
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        let future: EventLoopFuture<any Channel>
        if let address = endpointState.literalAddress {
            future = bootstrap.connect(to: address)
        } else {
            future = bootstrap.connect(host: endpoint.host, port: endpoint.port)
        }
        connection.connectFuture = future.map { _ in () }.recover { _ in () }
        future.assumeIsolated().whenComplete { result in
            endpointState.connecting -= 1
            // The slot this connect held may open the next (a waiting call's, else a warm one).
            defer {
                self.serveWaiters(endpointState)
                self.refill(endpointState)
            }
            switch result {
            case .success:
                self.configuration.events.connectionOpened(endpoint)
                if sslContext != nil { connection.armHandshakeDeadline(connectDeadline, on: self.eventLoop) }
                if warm {
                    connection.warmOpenedAt = .now()
                }
                if negotiates {
                    // A warm one counts as being opened until its handshake has chosen.
                    connection.awaitNegotiation(warm: warm)
                } else {
                    if warm { self.warmConnectDone(endpointState, opened: true) }
                    connection.didConnect()
                }
            case .failure(let error):
                if warm { self.warmConnectDone(endpointState, opened: false) }
                connection.didFailToConnect(error)
            }
        }
    }
}

/// Connect failure that happens before any socket work (for example an unusable TLS configuration).
package struct UpstreamConnectError: Error, CustomStringConvertible {
    package var detail: String
    package var description: String { self.detail }
}
