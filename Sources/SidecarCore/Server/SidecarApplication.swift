import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle

/// Builds the sidecar's Hummingbird application: responder, shared upstream client, services.
///
/// ```swift
/// let app = SidecarApplication.make(runtime: runtime, listen: config.server.listen, logger: logger)
/// try await app.runService()
/// ```
public enum SidecarApplication {
    /// - Parameters:
    ///   - runtime: the loaded configuration and what is derived from it.
    ///   - listen: address to bind (`port` 0 picks a free port).
    ///   - upstream: the client for upstream calls; `nil` creates the shared AsyncHTTPClient.
    ///   - metricsFactory: where metrics go; `prometheus` is what `/metrics` shows.
    public static func make(
        runtime: SidecarRuntime,
        listen: ListenAddress,
        upstream: (any UpstreamClient)? = nil,
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        prometheus: PrometheusCollectorRegistry? = nil,
        readiness: ReadinessState = ReadinessState(),
        logger: Logger
    ) -> some ApplicationProtocol {
        var services: [any Service] = []
        let client: any UpstreamClient
        if let upstream {
            client = upstream
        } else {
            let http = HTTPUpstreamClient(timeouts: runtime.configuration.timeouts, logger: logger)
            services.append(UpstreamClientService(client: http))
            client = http
        }
        let pipeline = ProxyPipeline(
            runtime: runtime,
            upstream: client,
            metrics: SidecarMetrics(factory: metricsFactory),
            logger: logger
        )
        let responder = SidecarResponder(
            pipeline: pipeline,
            readiness: readiness,
            prometheus: prometheus,
            logger: logger
        )
        return Application(
            responder: responder,
            configuration: ApplicationConfiguration(
                address: .hostname(listen.host, port: listen.port),
                serverName: nil
            ),
            services: services,
            onServerRunning: { channel in
                readiness.markListening()
                logger.info(
                    "llm-sidecar listening",
                    metadata: ["server.address": "\(channel.localAddress?.description ?? listen.description)"]
                )
            },
            logger: logger
        )
    }
}
