/// Turns a request's model, pin header and complexity score into a ``RouteDecision``.
///
/// ```swift
/// let selector = RouteSelector(routing: config.routing, models: config.models, defaultUpstream: "ollama")
/// let decision = selector.select(requestedModel: "gpt-4o", pinHeader: false, score: score)
/// ```
public struct RouteSelector: Sendable {
    package let routing: RoutingConfiguration
    package let modelUpstreams: [String: String]
    package let defaultUpstream: String

    /// - Parameters:
    ///   - routing: tiers, mode, alias and pins.
    ///   - models: the configured models, for the upstream that serves each.
    ///   - defaultUpstream: the upstream of a model that is not configured (a pinned id).
    public init(routing: RoutingConfiguration, models: [ModelConfiguration], defaultUpstream: String) {
        self.routing = routing
        self.modelUpstreams = Dictionary(models.map { ($0.name, $0.upstream) }, uniquingKeysWith: { first, _ in first })
        self.defaultUpstream = defaultUpstream
    }

    /// Strips the pin prefix: returns the model to pin, or `nil` if `model` carries no prefix.
    public func pinnedModel(fromPrefixed model: String) -> String? {
        guard !self.routing.pinPrefix.isEmpty, model.hasPrefix(self.routing.pinPrefix) else { return nil }
        let rest = String(model.dropFirst(self.routing.pinPrefix.count))
        return rest.isEmpty ? nil : rest
    }

    /// The decision for a chat or completions request.
    ///
    /// - Parameters:
    ///   - requestedModel: the body's `model`, if any.
    ///   - pinHeader: whether the pin header asked to keep the requested model.
    ///   - score: the request's complexity.
    public func select(requestedModel: String?, pinHeader: Bool, score: ComplexityScore) -> RouteDecision {
        if let requestedModel {
            if let pinned = self.pinnedModel(fromPrefixed: requestedModel) {
                return self.keep(pinned, score: score, reason: .pinned)
            }
            let isAlias = requestedModel == self.routing.autoAlias
            if pinHeader && !isAlias {
                return self.keep(requestedModel, score: score, reason: .pinned)
            }
            if self.routing.mode == .autoOnly && !isAlias {
                return self.keep(requestedModel, score: score, reason: .passthrough)
            }
        }
        guard !self.routing.tiers.isEmpty else {
            return self.keep(requestedModel ?? "", score: score, reason: .passthrough)
        }
        let index = self.routing.tiers.firstIndex { score.value < $0.maxScore } ?? (self.routing.tiers.count - 1)
        let model = self.routing.tiers[index].model
        return RouteDecision(
            model: model,
            upstream: self.modelUpstreams[model] ?? self.defaultUpstream,
            requestedModel: requestedModel,
            score: score,
            reason: .tier(index)
        )
    }

    /// The decision for a request that is not routed (embeddings): the model's own upstream.
    public func owner(of model: String?) -> String {
        model.flatMap { self.modelUpstreams[$0] } ?? self.defaultUpstream
    }

    private func keep(_ model: String, score: ComplexityScore, reason: RouteDecision.Reason) -> RouteDecision {
        RouteDecision(
            model: model,
            upstream: self.modelUpstreams[model] ?? self.defaultUpstream,
            requestedModel: model,
            score: score,
            reason: reason
        )
    }
}
