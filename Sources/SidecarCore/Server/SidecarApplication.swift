import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle
import SidecarEmbedding
import SidecarHTTP
import SidecarPolicy
import SidecarRedis
import Synchronization
import UnixSignals

/// Builds the sidecar: its services, the shared upstream connection pools, the request path and
/// the listener (``SidecarListener``).
///
/// ```swift
/// let app = SidecarApplication.make(runtime: runtime, listen: config.server.listen, logger: logger)
/// try await app.runService()
/// ```
public enum SidecarApplication {
    /// - Parameters:
    ///   - runtime: the loaded configuration and what is derived from it.
    ///   - listen: address to bind (`port` 0 picks a free port).
    ///   - metricsFactory: where metrics go; `prometheus` is what `/metrics` shows.
    ///   - embeddingModel: the model that embeds prompts for the semantic cache and the learned
    ///     router (`nil`: exact caching only, the heuristic scorer only).
    ///   - notifier: systemd's notification socket (`READY=1`, the watchdog, `STOPPING=1`).
    ///   - reload: reads the configuration again on SIGHUP (`nil`: SIGHUP is not handled).
    public static func make(
        runtime: SidecarRuntime,
        listen: ListenAddress,
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        prometheus: PrometheusCollectorRegistry? = nil,
        readiness: ReadinessState = ReadinessState(),
        embeddingModel: MiniLMEmbedder? = nil,
        notifier: SystemdNotifier = SystemdNotifier(),
        reload: (@Sendable () throws -> SidecarRuntime)? = nil,
        logger: Logger
    ) -> SidecarServer {
        let group = MultiThreadedEventLoopGroup.singleton
        let timeouts = runtime.configuration.timeouts
        let metrics = SidecarMetrics(factory: metricsFactory)
        let pools = UpstreamConnectionPools(
            group: group,
            configuration: .init(
                connectTimeout: .nanoseconds(timeouts.connect.saturatingNanoseconds),
                idleTimeout: .nanoseconds(timeouts.idle.saturatingNanoseconds),
                events: UpstreamConnectionEvents(
                    connectionOpened: { metrics.recordUpstreamConnectionOpened(endpoint: $0.displayAddress) },
                    tlsHandshakeCompleted: { metrics.recordUpstreamTLSHandshake(endpoint: $0.displayAddress) },
                    http2Negotiated: { metrics.recordUpstreamHTTP2Connection(endpoint: $0.displayAddress) }
                )
            )
        )
        let cacheConfiguration = runtime.configuration.cache
        var services: [any Service] = [
            UpstreamClientService(
                pools: pools,
                endpoints: runtime.directory.endpointSettings(runtime.configuration.upstreams)
            )
        ]
        var cache: any ResponseCache = DisabledResponseCache()
        let semantic = cacheConfiguration.enabled && cacheConfiguration.semantic
        let embedder =
            (semantic || runtime.scorer.wantsEmbedding) ? embeddingModel.map { PromptEmbedder(model: $0) } : nil
        var redis: RedisClient?
        if cacheConfiguration.enabled {
            var shared: RedisAnswerStore?
            if cacheConfiguration.backend == .redis {
                do {
                    shared = try RedisAnswerStore(configuration: cacheConfiguration, metrics: metrics, logger: logger)
                    redis = shared?.client
                } catch {
                    logger.error("redis cache unusable; caching in memory only", metadata: ["error": "\(error)"])
                }
            }
            let responseCache = SidecarResponseCache(
                configuration: cacheConfiguration,
                embedder: semantic ? embedder : nil,
                shared: shared,
                metrics: metrics,
                logger: logger,
                keepCutEmbeddings: runtime.scorer.wantsEmbedding,
                pinHeader: runtime.configuration.routing.pinHeader
            )
            services.append(CacheService(cache: responseCache))
            cache = responseCache
        }
        if let embedder { services.append(EmbedderService(embedder: embedder)) }
        let ledger = SpendLedger(
            configuration: runtime.configuration.spend,
            file: SpendLedger.stateFile(runtime.configuration.spend, environment: ProcessInfo.processInfo.environment),
            redis: redis
        )
        do {
            try ledger.load()
        } catch {
            logger.error("spend state unreadable; starting from zero", metadata: ["error": "\(error)"])
        }
        services.append(SpendService(ledger: ledger, logger: logger))
        // Made whether or not it is on now: a reload may turn it on.
        let accessLog = AccessLog()
        services.append(AccessLogService(log: accessLog, eventLoop: group.any()))
        if notifier.isActive { services.append(SystemdWatchdogService(notifier: notifier, logger: logger)) }
        let phases = RequestPhases(
            runtime: runtime,
            metrics: metrics,
            logger: logger,
            cache: cache,
            embedder: embedder,
            journal: RouteJournal(capacity: runtime.configuration.routing.feedbackMaxEntries, redis: redis),
            ledger: ledger,
            accessLog: accessLog
        )
        let current = CurrentPhases(phases)
        if let reload {
            services.append(
                ReloadService(current: current, load: reload, notifier: notifier, logger: logger) { runtime in
                    pools.configureEndpoints(runtime.directory.endpointSettings(runtime.configuration.upstreams))
                }
            )
        }
        let responder = SidecarResponder(
            current: current,
            readiness: readiness,
            prometheus: prometheus,
            logger: logger
        )
        let dispatcher = SidecarDispatcher(current: current, responder: responder, pools: pools, group: group)
        let configured = runtime.configuration.limits
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        decoderLimits.maxHeaderFieldSize = configured.maxFieldBytes
        decoderLimits.maxHeaderListSize = configured.maxHeaderBytes
        decoderLimits.maxHeaderFieldCount = configured.maxHeaders
        let limits = ListenerLimits(
            maxBodyBytes: runtime.configuration.server.maxBodyBytes,
            decoder: decoderLimits,
            requestRead: .nanoseconds(configured.requestRead.saturatingNanoseconds),
            idleConnection: .nanoseconds(configured.idleConnection.saturatingNanoseconds),
            maxConnections: configured.maxConnections,
            logger: logger
        )
        let listening = ListeningSignal()
        let listener = SidecarListener(
            address: listen,
            group: group,
            child: SidecarChildChannel(dispatcher: dispatcher, limits: limits),
            logger: logger,
            onFailure: { listening.signal(nil) },
            onRunning: { channel in
                if let path = listen.socketPath, chmod(path, mode_t(runtime.configuration.server.socketMode)) != 0 {
                    logger.error(
                        "cannot set the Unix socket's permissions",
                        metadata: ["path": "\(path)", "errno": "\(errno)"]
                    )
                }
                readiness.markListening()
                notifier.notify("READY=1")
                logger.info(
                    "llm-sidecar listening",
                    metadata: ["server.address": "\(channel.localAddress?.description ?? listen.description)"]
                )
                listening.signal(channel.localAddress)
            }
        )
        // The listener last: on shutdown it stops first (services stop in reverse order).
        return SidecarServer(services: services + [listener], listening: listening, logger: logger)
    }
}

/// The sidecar's services, the listener among them, run as one group until a shutdown signal.
///
/// ```swift
/// try await server.runService(gracefulShutdownSignals: [.sigterm, .sigint])
/// ```
public struct SidecarServer: Sendable {
    let services: [any Service]
    let listening: ListeningSignal
    let logger: Logger

    /// Runs every service; a signal in `gracefulShutdownSignals` drains the listener, then
    /// stops the rest.
    public func runService(gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        let group = ServiceGroup(
            services: self.services,
            gracefulShutdownSignals: gracefulShutdownSignals,
            cancellationSignals: [],
            logger: self.logger
        )
        try await group.run()
    }

    /// The address the listener is bound to, once it is (`port` 0 picks a free one).
    public func listeningAddress() async -> SocketAddress? {
        await self.listening.wait()
    }
}

/// Completes once, with the listener's address.
final class ListeningSignal: Sendable {
    private enum State {
        case waiting([CheckedContinuation<SocketAddress?, Never>])
        case done(SocketAddress?)
    }

    private let state = Mutex(State.waiting([]))

    func signal(_ address: SocketAddress?) {
        let waiters: [CheckedContinuation<SocketAddress?, Never>] = self.state.withLock { state in
            guard case .waiting(let waiters) = state else { return [] }
            state = .done(address)
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: address) }
    }

    func wait() async -> SocketAddress? {
        await withCheckedContinuation { continuation in
            let done: SocketAddress?? = self.state.withLock { state in
                switch state {
                case .waiting(var waiters):
                    waiters.append(continuation)
                    state = .waiting(waiters)
                    return nil
                case .done(let address):
                    return .some(address)
                }
            }
            if let done { continuation.resume(returning: done) }
        }
    }
}
