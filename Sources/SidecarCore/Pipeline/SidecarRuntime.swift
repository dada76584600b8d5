import SidecarEmbedding
import SidecarPolicy

/// Everything derived from one configuration that the request path reads: built once at
/// start (and again on reload), then shared immutably.
public struct SidecarRuntime: Sendable {
    public let configuration: SidecarConfiguration
    public let selector: RouteSelector
    public let directory: UpstreamDirectory
    public let costs: CostCalculator
    /// The heuristic scorer and, when `routing.router` loaded, the learned router.
    public let scorer: RoutingScorer
    /// The built-in embedder serving `embeddings.local_model`, when its files loaded.
    public let localEmbedder: (any Embedder)?
    /// Which app a request comes from (`[[clients]]` tokens, `X-Sidecar-App`).
    public let apps: AppAttribution

    public init(
        configuration: SidecarConfiguration,
        environment: [String: String],
        scorer: RoutingScorer = RoutingScorer(),
        localEmbedder: (any Embedder)? = nil
    ) {
        self.configuration = configuration
        self.selector = RouteSelector(configuration: configuration)
        self.directory = UpstreamDirectory(configuration: configuration, environment: environment)
        self.costs = CostCalculator(prices: PriceTable(configuration: configuration))
        self.scorer = scorer
        self.localEmbedder = localEmbedder
        self.apps = AppAttribution(
            clients: configuration.clients,
            environment: environment,
            publicPaths: configuration.server.publicPaths
        )
    }
}
