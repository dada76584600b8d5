/// Where one request goes and why.
public struct RouteDecision: Sendable, Equatable {
    /// Why the model was chosen.
    public enum Reason: Sendable, Equatable {
        /// Chosen by complexity: the index of the tier that matched.
        case tier(Int)
        /// The client pinned the model (header or prefix).
        case pinned
        /// Routing is limited to the `auto` alias and another model was asked for.
        case passthrough

        /// A label-safe name for logs and metrics.
        public var label: String {
            switch self {
            case .tier: return "tier"
            case .pinned: return "pinned"
            case .passthrough: return "passthrough"
            }
        }
    }

    /// What moved a tier decision away from the strategy's pick.
    public enum Limit: String, Sendable, Equatable {
        /// `X-Sidecar-Tier` chose the tier.
        case forced
        /// The app's `max_tier` lowered it.
        case app
        /// `X-Sidecar-Max-Cost` lowered it.
        case cost
    }

    /// The model id sent upstream.
    public var model: String
    /// The upstream that serves it.
    public var upstream: String
    /// The model as the client asked for it (after a pin prefix is removed).
    public var requestedModel: String?
    public var score: ComplexityScore
    public var reason: Reason
    /// What overrode the strategy, if anything.
    public var limit: Limit?

    public init(
        model: String,
        upstream: String,
        requestedModel: String?,
        score: ComplexityScore,
        reason: Reason,
        limit: Limit? = nil
    ) {
        self.model = model
        self.upstream = upstream
        self.requestedModel = requestedModel
        self.score = score
        self.reason = reason
        self.limit = limit
    }

    /// `X-Sidecar-Route`: `tier`, `pinned` or `passthrough`, with the limit after a colon
    /// (`tier:app`) when one moved the tier.
    public var routeLabel: String {
        guard let limit = self.limit else { return self.reason.label }
        return "\(self.reason.label):\(limit.rawValue)"
    }

    /// The tier's index, for tier decisions.
    public var tier: Int? {
        if case .tier(let index) = self.reason { return index }
        return nil
    }
}
