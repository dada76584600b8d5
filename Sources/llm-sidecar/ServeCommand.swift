import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import SidecarCore
import SidecarPolicy

/// `llm-sidecar serve`: runs the proxy until SIGTERM or SIGINT, then drains in-flight requests.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the proxy (default).")

    @OptionGroup var options: CommonOptions

    @Option(name: .long, help: "Listen address HOST:PORT, overriding server.listen.")
    var listen: String?

    func run() async throws {
        var (configuration, source) = try ConfigurationLoader.load(
            path: self.options.config,
            environment: ProcessInfo.processInfo.environment
        )
        if let listen = self.listen {
            guard let address = ListenAddress(parsing: listen) else {
                throw ValidationError("--listen expects HOST:PORT, found \"\(listen)\"")
            }
            configuration.server.listen = address
        }
        // Who may use it: every client token set, and none missing beyond loopback (exit 2 otherwise).
        let accessWarnings = try configuration.validateAccess(
            environment: ProcessInfo.processInfo.environment,
            file: "\(source)"
        )
        let level = Logger.Level(rawValue: self.options.logLevel) ?? .info
        LoggingSystem.bootstrap { label in StandardErrorLogHandler(label: label, level: level) }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = Logger(label: "llm-sidecar")

        logger.info("configuration loaded", metadata: ["config.source": "\(source)"])
        for warning in accessWarnings { logger.warning("\(warning)") }
        let router = RouterLoading.load(configuration.routing, logger: logger)
        let localEmbedder = LocalEmbedderLoading.load(configuration.embeddings, logger: logger)
        let runtime = SidecarRuntime(
            configuration: configuration,
            environment: ProcessInfo.processInfo.environment,
            scorer: RoutingScorer(learned: router),
            localEmbedder: localEmbedder
        )
        // SIGHUP: the same file again (the listen address and the cache stay as they are).
        let path = self.options.config
        let listenAddress = configuration.server.listen
        let reload: @Sendable () throws -> SidecarRuntime = {
            var (configuration, source) = try ConfigurationLoader.load(
                path: path,
                environment: ProcessInfo.processInfo.environment
            )
            configuration.server.listen = listenAddress
            for warning in try configuration.validateAccess(
                environment: ProcessInfo.processInfo.environment,
                file: "\(source)"
            ) {
                logger.warning("\(warning)")
            }
            logger.info("configuration read for reload", metadata: ["config.source": "\(source)"])
            return SidecarRuntime(
                configuration: configuration,
                environment: ProcessInfo.processInfo.environment,
                scorer: RoutingScorer(learned: RouterLoading.load(configuration.routing, logger: logger)),
                localEmbedder: localEmbedder
            )
        }
        for name in runtime.directory.names {
            if runtime.directory.entry(name)?.isPlainHTTPBeyondLoopback == true {
                logger.warning(
                    "upstream is plain http:// beyond loopback; requests cross the network unencrypted",
                    metadata: ["upstream.name": "\(name)"]
                )
            }
            if let missing = runtime.directory.entry(name)?.missingKeyVariable {
                logger.warning(
                    "upstream key variable is not set; requests go without a key",
                    metadata: ["upstream.name": "\(name)", "env": "\(missing)"]
                )
            }
        }
        let app = SidecarApplication.make(
            runtime: runtime,
            listen: configuration.server.listen,
            metricsFactory: MetricsSystem.factory,
            prometheus: registry,
            embeddingModel: LocalEmbedderLoading.promptModel(configuration, router: router != nil, logger: logger),
            reload: reload,
            logger: logger
        )
        try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
    }
}
