/// `[routing]`: how requests are mapped to models.
public struct RoutingConfiguration: Sendable, Equatable {
    /// Which requests are routed by complexity.
    public enum Mode: String, Sendable, Equatable, CaseIterable {
        /// Every request is routed unless pinned: existing apps need no code change.
        case all
        /// Only requests for the `auto` alias are routed; other models pass through as requested.
        case autoOnly = "auto_only"
    }

    /// One tier: requests whose score is below `maxScore` go to `model`.
    public struct Tier: Sendable, Equatable {
        public var maxScore: Double
        public var model: String

        public init(maxScore: Double, model: String) {
            self.maxScore = maxScore
            self.model = model
        }
    }

    /// Ordered tiers: the first whose `maxScore` is above the request's score wins.
    public var tiers: [Tier]
    public var mode: Mode
    /// Model alias that always routes.
    public var autoAlias: String
    /// Request header that pins the requested model (any value but `0`/`false`).
    public var pinHeader: String
    /// Model prefix that pins the model after it: `pin/gpt-4o` sends `gpt-4o` unchanged.
    public var pinPrefix: String
    /// Upstream for other `/v1/*` paths and for unknown pinned models; empty means the first upstream.
    public var defaultUpstream: String
    /// Upstream receiving Ollama's native `/api/*`; empty disables those paths.
    public var ollamaUpstream: String

    public init(
        tiers: [Tier] = [],
        mode: Mode = .all,
        autoAlias: String = "auto",
        pinHeader: String = "X-Sidecar-Pin",
        pinPrefix: String = "pin/",
        defaultUpstream: String = "",
        ollamaUpstream: String = "ollama"
    ) {
        self.tiers = tiers
        self.mode = mode
        self.autoAlias = autoAlias
        self.pinHeader = pinHeader
        self.pinPrefix = pinPrefix
        self.defaultUpstream = defaultUpstream
        self.ollamaUpstream = ollamaUpstream
    }
}
