import NIOCore
import NIOSSL
import Synchronization

/// Sendable owner of one pool per event loop of a group.
package final class UpstreamConnectionPools: Sendable {
    package struct Configuration: Sendable {
        package var connectTimeout: TimeAmount
        /// No byte from the upstream for this long while a call waits for or reads a response (and is not paused)
        /// -> the call fails (code .deadlineExceeded, detail "read timed out after N ms"), the connection is closed.
        package var idleTimeout: TimeAmount
        /// Per endpoint per event loop; requests beyond it wait FIFO for a connection (a waiting request that is
        /// cancelled leaves the queue).
        package var maxConnectionsPerEndpoint: Int
        /// Kept-alive idle connections are closed after this long unused.
        package var idleConnectionTimeout: TimeAmount
        /// Max idle connections kept per endpoint per event loop (beyond: closed instead of kept).
        package var maxIdleConnectionsPerEndpoint: Int
        /// TLS for endpoints without a trust of their own (``UpstreamEndpoint/trust``): by default
        /// the system's roots with full verification (chain and host name). Its context is made
        /// once, here; an endpoint's own is made when its ``UpstreamTrust`` is.
        package var tlsConfiguration: TLSConfiguration
        /// Told of each connection opened (TCP connected) and each TLS handshake completed, for
        /// the metrics: what a burst costs in new connections.
        package var events: UpstreamConnectionEvents

        package init(
            connectTimeout: TimeAmount = .seconds(10),
            idleTimeout: TimeAmount = .seconds(300),
            maxConnectionsPerEndpoint: Int = 256,
            idleConnectionTimeout: TimeAmount = .seconds(60),
            maxIdleConnectionsPerEndpoint: Int = 64,
            tlsConfiguration: TLSConfiguration = .makeClientConfiguration(),
            events: UpstreamConnectionEvents = UpstreamConnectionEvents()
        ) {
            self.connectTimeout = connectTimeout
            self.idleTimeout = idleTimeout
            self.maxConnectionsPerEndpoint = maxConnectionsPerEndpoint
            self.idleConnectionTimeout = idleConnectionTimeout
            self.maxIdleConnectionsPerEndpoint = maxIdleConnectionsPerEndpoint
            self.tlsConfiguration = tlsConfiguration
            self.events = events
        }
    }

    /// A pool with the loop it is confined to. The pool is only ever touched on that loop.
    private final class Box: @unchecked Sendable {
        let eventLoop: any EventLoop
        let pool: UpstreamConnectionPool

        init(eventLoop: any EventLoop, pool: UpstreamConnectionPool) {
            self.eventLoop = eventLoop
            self.pool = pool
        }
    }

    package let configuration: Configuration
    private let sslContexts: UpstreamTLSContexts?
    private let sslContextError: String?
    /// Built once at init; read without a lock on the request path.
    private let boxes: [ObjectIdentifier: Box]
    /// Pools created lazily for loops that are not part of the group (should not happen; never on the hot path).
    private let extraBoxes = Mutex<[ObjectIdentifier: Box]>([:])

    package init(group: any EventLoopGroup, configuration: Configuration) {
        self.configuration = configuration
        do {
            self.sslContexts = try UpstreamTLSContexts(configuration: configuration.tlsConfiguration)
            self.sslContextError = nil
        } catch {
            self.sslContexts = nil
            self.sslContextError = "invalid TLS configuration: \(error)"
        }
        var boxes: [ObjectIdentifier: Box] = [:]
        for eventLoop in group.makeIterator() {
            let pool = UpstreamConnectionPool(
                eventLoop: eventLoop,
                configuration: configuration,
                sslContexts: self.sslContexts,
                sslContextError: self.sslContextError
            )
            boxes[ObjectIdentifier(eventLoop)] = Box(eventLoop: eventLoop, pool: pool)
        }
        self.boxes = boxes
    }

    /// Must be called on `eventLoop`. Loops outside the group get a lazily created pool.
    package func pool(for eventLoop: any EventLoop) -> UpstreamConnectionPool {
        eventLoop.assertInEventLoop()
        let key = ObjectIdentifier(eventLoop)
        if let box = self.boxes[key] {
            return box.pool
        }
        return self.extraBoxes.withLock { extra in
            if let box = extra[key] {
                return box.pool
            }
            let pool = UpstreamConnectionPool(
                eventLoop: eventLoop,
                configuration: self.configuration,
                sslContexts: self.sslContexts,
                sslContextError: self.sslContextError
            )
            extra[key] = Box(eventLoop: eventLoop, pool: pool)
            return pool
        }
    }

    /// Applies each endpoint's settings on every event loop (see
    /// ``UpstreamConnectionPool/configureEndpoints(_:)``); endpoints not named get the defaults.
    /// Returns at once.
    package func configureEndpoints(_ endpoints: [(endpoint: UpstreamEndpoint, settings: UpstreamEndpointSettings)]) {
        for box in self.boxes.values {
            box.eventLoop.execute { box.pool.configureEndpoints(endpoints) }
        }
    }

    /// Closes every connection (idle and active; active and queued calls fail with .cancelled), then returns. Safe
    /// to call twice.
    package func shutdown() async {
        let allBoxes = Array(self.boxes.values) + self.extraBoxes.withLock { Array($0.values) }
        var futures: [EventLoopFuture<Void>] = []
        for box in allBoxes {
            futures.append(box.eventLoop.flatSubmit { box.pool.shutdown() })
        }
        for future in futures {
            try? await future.get()
        }
    }
}

/// What the pools report about the connections they open (on the connection's event loop; keep it
/// cheap). Connections are few next to requests, so a metric per event costs little.
package struct UpstreamConnectionEvents: Sendable {
    package var connectionOpened: @Sendable (UpstreamEndpoint) -> Void
    package var tlsHandshakeCompleted: @Sendable (UpstreamEndpoint) -> Void
    /// A TLS handshake chose HTTP/2: the connection carries calls as streams.
    package var http2Negotiated: @Sendable (UpstreamEndpoint) -> Void

    package init(
        connectionOpened: @escaping @Sendable (UpstreamEndpoint) -> Void = { _ in },
        tlsHandshakeCompleted: @escaping @Sendable (UpstreamEndpoint) -> Void = { _ in },
        http2Negotiated: @escaping @Sendable (UpstreamEndpoint) -> Void = { _ in }
    ) {
        self.connectionOpened = connectionOpened
        self.tlsHandshakeCompleted = tlsHandshakeCompleted
        self.http2Negotiated = http2Negotiated
    }
}
