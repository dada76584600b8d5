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

    /// How the score picks a tier.
    public enum Strategy: String, Sendable, Equatable, CaseIterable {
        /// The cheapest tier whose `max_score` is above the score (tiers as configured).
        case cost
        /// The score is raised by `strategy_margin` first: prompts near a boundary go up a tier.
        case quality
        /// The score is raised by half of `strategy_margin`.
        case balanced
        /// Of the tier `cost` picks and every tier above it, the one whose model has answered
        /// fastest lately (time to the first byte, a moving average); `cost`'s until measured.
        case latency
    }

    /// `[[routing.apps]]`: limits for one app (named by `X-Sidecar-App`, else `default`).
    public struct AppLimit: Sendable, Equatable {
        public var name: String
        /// The highest tier index the app may use (0: the first tier only).
        public var maxTier: Int

        public init(name: String, maxTier: Int) {
            self.name = name
            self.maxTier = maxTier
        }
    }

    /// Ordered tiers: the first whose `maxScore` is above the request's score wins.
    public var tiers: [Tier]
    /// The learned router's directory (`router.json`); empty: the heuristic scorer only.
    public var router: String
    public var strategy: Strategy
    /// How far `quality` raises the score (`balanced`: half of it).
    public var strategyMargin: Double
    /// The longest the route phase waits for the prompt's embedding when the cache made none.
    public var embeddingBudgetMilliseconds: Int
    /// Per-app tier ceilings.
    public var apps: [AppLimit]
    /// Routing decisions kept for `POST /sidecar/feedback` (the most recent ones).
    public var feedbackMaxEntries: Int
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
    /// Whether Ollama's model-management endpoints (pull, push, create, copy, delete, blobs) are
    /// forwarded; by default they are refused, so an app cannot make the host download or delete
    /// models.
    public var ollamaAdmin: Bool

    public init(
        tiers: [Tier] = [],
        router: String = "",
        strategy: Strategy = .cost,
        strategyMargin: Double = 0.15,
        embeddingBudgetMilliseconds: Int = 30,
        apps: [AppLimit] = [],
        feedbackMaxEntries: Int = 100_000,
        mode: Mode = .all,
        autoAlias: String = "auto",
        pinHeader: String = "X-Sidecar-Pin",
        pinPrefix: String = "pin/",
        defaultUpstream: String = "",
        ollamaUpstream: String = "ollama",
        ollamaAdmin: Bool = false
    ) {
        self.tiers = tiers
        self.router = router
        self.strategy = strategy
        self.strategyMargin = strategyMargin
        self.embeddingBudgetMilliseconds = embeddingBudgetMilliseconds
        self.apps = apps
        self.feedbackMaxEntries = feedbackMaxEntries
        self.mode = mode
        self.autoAlias = autoAlias
        self.pinHeader = pinHeader
        self.pinPrefix = pinPrefix
        self.defaultUpstream = defaultUpstream
        self.ollamaUpstream = ollamaUpstream
        self.ollamaAdmin = ollamaAdmin
    }
}
