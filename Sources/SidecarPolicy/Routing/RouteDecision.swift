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

    /// The model id sent upstream.
    public var model: String
    /// The upstream that serves it.
    public var upstream: String
    /// The model as the client asked for it (after a pin prefix is removed).
    public var requestedModel: String?
    public var score: ComplexityScore
    public var reason: Reason

    public init(model: String, upstream: String, requestedModel: String?, score: ComplexityScore, reason: Reason) {
        self.model = model
        self.upstream = upstream
        self.requestedModel = requestedModel
        self.score = score
        self.reason = reason
    }
}
