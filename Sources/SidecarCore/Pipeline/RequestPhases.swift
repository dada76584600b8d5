import Logging
import NIOCore
import SidecarHTTP
import SidecarPolicy

/// The components of a request's phases, built once per configuration and shared by every
/// connection: what ``RequestLifecycle`` calls, in order.
///
/// ```swift
/// let phases = RequestPhases(runtime: runtime, metrics: SidecarMetrics(factory: factory), logger: logger)
/// let lifecycle = RequestLifecycle(request, phases: phases, sink: connection)
/// ```
public final class RequestPhases: Sendable {
    public let runtime: SidecarRuntime
    /// Breakers, retry budgets and balancers for this runtime's upstreams and models.
    public let resilience: ResilienceRegistry
    let metrics: SidecarMetrics
    let logger: Logger

    let decoder: RequestDecoder
    let cache: any ResponseCache
    let scorer: RequestScorer
    let router: RoutePlanner
    let builder: UpstreamRequestBuilder
    let pricer: Pricer
    let recorder: RequestRecorder
    /// Recent routing decisions, for feedback.
    let journal: RouteJournal
    /// Spend per app per day (budgets, `X-Sidecar-Spend-Today`, the stats).
    let ledger: SpendLedger
    /// The access log's writer (used while `server.access_log` is on).
    let accessLog: AccessLog?
    /// History and splits for `/sidecar/stats` and the dashboard.
    let stats: StatsBoard
    /// `max_concurrent` per upstream; `nil` when no upstream sets one.
    let limiter: ConcurrencyLimiter?
    /// `[limits]`: requests in flight and queued, and each app's rates (kept across reloads).
    let admission: ClientAdmission
    /// Whether any app has a request or token rate (else the rates are not consulted).
    let limitsRates: Bool

    /// - Parameters:
    ///   - cache: the cache phases' store; by default the configured one, in memory, without
    ///     semantic lookups (``SidecarApplication`` adds the embedder and Redis).
    ///   - embedder: the prompt embedder shared with the cache, for the learned router.
    ///   - journal: where routing decisions are kept for feedback (by default, in memory).
    ///   - ledger: spend per app per day (by default, in memory only).
    ///   - accessLog: where the JSON access-log lines go when `server.access_log` is on.
    init(
        runtime: SidecarRuntime,
        metrics: SidecarMetrics,
        logger: Logger,
        cache: (any ResponseCache)? = nil,
        embedder: PromptEmbedder? = nil,
        journal: RouteJournal? = nil,
        ledger: SpendLedger? = nil,
        accessLog: AccessLog? = nil,
        stats: StatsBoard? = nil,
        admission: ClientAdmission? = nil
    ) {
        let configuration = runtime.configuration
        self.runtime = runtime
        self.metrics = metrics
        self.logger = logger
        self.resilience = ResilienceRegistry(
            configuration: configuration,
            onTransition: { key, transition in
                metrics.recordBreakerTransition(
                    upstream: key.upstream,
                    traffic: key.traffic.rawValue,
                    to: transition.to
                )
                logger.warning(
                    "circuit breaker changed state",
                    metadata: [
                        "upstream.name": "\(key.upstream)", "breaker.traffic": "\(key.traffic.rawValue)",
                        "breaker.from": "\(transition.from.label)",
                        "breaker.to": "\(transition.to.label)", "breaker.reason": "\(transition.reason.label)",
                    ]
                )
            }
        )
        let statsBoard = stats ?? StatsBoard()
        self.stats = statsBoard
        let admission = admission ?? ClientAdmission(configuration.limits)
        self.admission = admission
        self.limitsRates = configuration.limits.limitsRates
        let spendLedger = ledger ?? SpendLedger(configuration: configuration.spend, file: nil, redis: nil)
        self.ledger = spendLedger
        let ollama = configuration.routing.ollamaUpstream
        self.decoder = RequestDecoder(
            localEmbeddingModel: configuration.embeddings.localModel,
            ollamaUpstream: ollama,
            ollamaUpstreamConfigured: !ollama.isEmpty && runtime.directory.entry(ollama) != nil,
            ollamaAdmin: configuration.routing.ollamaAdmin
        )
        self.cache =
            cache
            ?? (configuration.cache.enabled
                ? SidecarResponseCache(
                    configuration: configuration.cache,
                    embedder: nil,
                    shared: nil,
                    metrics: metrics,
                    logger: logger,
                    pinHeader: configuration.routing.pinHeader
                ) : DisabledResponseCache())
        self.scorer = RequestScorer(
            scorer: runtime.scorer,
            embedder: embedder,
            budgetMilliseconds: configuration.routing.embeddingBudgetMilliseconds
        )
        self.router = RoutePlanner(
            selector: runtime.selector,
            models: Dictionary(configuration.models.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first }),
            defaultUpstream: configuration.defaultUpstreamName,
            ollamaUpstream: ollama,
            pinHeader: configuration.routing.pinHeader,
            timeouts: configuration.timeouts,
            policy: configuration.resilience.retry,
            maxResponseBytes: configuration.server.maxResponseBytes,
            ledger: spendLedger,
            budgets: configuration.spend.dailyBudgets,
            metrics: metrics
        )
        self.builder = UpstreamRequestBuilder(directory: runtime.directory, pinHeader: configuration.routing.pinHeader)
        self.pricer = Pricer(costs: runtime.costs, metrics: metrics, logger: logger)
        let journal = journal ?? RouteJournal(capacity: configuration.routing.feedbackMaxEntries)
        self.journal = journal
        self.recorder = RequestRecorder(
            metrics: metrics,
            logger: logger,
            journal: journal,
            latency: runtime.selector.latency,
            ledger: spendLedger,
            accessLog: configuration.server.accessLog ? accessLog : nil,
            stats: statsBoard,
            rates: configuration.limits.limitsRates ? admission.rates : nil
        )
        self.accessLog = accessLog
        let limits = Dictionary(
            configuration.upstreams.filter { $0.maxConcurrent > 0 }.map { ($0.name, $0.maxConcurrent) },
            uniquingKeysWith: { first, _ in first }
        )
        self.limiter = limits.isEmpty ? nil : ConcurrencyLimiter(limits: limits)
    }

    /// New phases for a reloaded configuration, keeping what outlives it: the metrics, the
    /// cache (its entries), the prompt embedder and the routing decisions kept for feedback.
    func reloaded(with runtime: SidecarRuntime) -> RequestPhases {
        self.admission.update(runtime.configuration.limits)
        return RequestPhases(
            runtime: runtime,
            metrics: self.metrics,
            logger: self.logger,
            cache: self.cache,
            embedder: self.scorer.embedder,
            journal: self.journal,
            ledger: self.ledger,
            accessLog: self.accessLog,
            stats: self.stats,
            admission: self.admission
        )
    }

    /// What the forward phase needs on one event loop (build it once per loop).
    func forwardEnvironment(transport: any UpstreamTransport, eventLoop: any EventLoop) -> ForwardEnvironment {
        ForwardEnvironment(
            builder: self.builder,
            transport: transport,
            resilience: self.resilience,
            limiter: self.limiter,
            metrics: self.metrics,
            logger: self.logger,
            eventLoop: eventLoop
        )
    }
}
