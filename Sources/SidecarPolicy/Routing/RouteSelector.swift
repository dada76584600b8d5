import Foundation

/// What a request asks of the route beyond its body: a forced tier, a cost ceiling, its app.
public struct RouteOverrides: Sendable, Equatable {
    /// `X-Sidecar-Tier`: a tier index or a tier's model name.
    public var forcedTier: String?
    /// `X-Sidecar-Max-Cost`: the most the request may cost in US dollars, estimated before it
    /// is sent (prompt tokens from its length, the answer at `max_tokens`, else 512 tokens).
    public var maxCostUSD: Double?
    /// The app the request is attributed to (`X-Sidecar-App`, else `default`).
    public var app: String
    /// The prompt's size in tokens, estimated (for the cost ceiling).
    public var estimatedPromptTokens: Int
    /// The request's `max_tokens`, if it set one.
    public var maxOutputTokens: Int?

    public init(
        forcedTier: String? = nil,
        maxCostUSD: Double? = nil,
        app: String = "default",
        estimatedPromptTokens: Int = 0,
        maxOutputTokens: Int? = nil
    ) {
        self.forcedTier = forcedTier
        self.maxCostUSD = maxCostUSD
        self.app = app
        self.estimatedPromptTokens = estimatedPromptTokens
        self.maxOutputTokens = maxOutputTokens
    }

    /// The answer's assumed length when the request sets no `max_tokens`.
    public static let assumedOutputTokens = 512
}

/// Turns a request's model, pin header, complexity score and overrides into a ``RouteDecision``.
///
/// ```swift
/// let selector = RouteSelector(routing: config.routing, models: config.models, defaultUpstream: "ollama")
/// let decision = selector.select(requestedModel: "gpt-4o", pinHeader: false, score: score)
/// ```
public struct RouteSelector: Sendable {
    package let routing: RoutingConfiguration
    package let modelUpstreams: [String: String]
    package let defaultUpstream: String
    /// Input and output US dollars per million tokens, by model (for the cost ceiling).
    package let prices: [String: (input: Double, output: Double)]
    package let appMaxTier: [String: Int]
    /// Measured time to the first byte per model (the `latency` strategy reads it).
    public let latency: LatencyBoard

    /// - Parameters:
    ///   - routing: tiers, strategy, mode, alias, pins and app ceilings.
    ///   - models: the configured models, for the upstream that serves each and its price.
    ///   - defaultUpstream: the upstream of a model that is not configured (a pinned id).
    public init(
        routing: RoutingConfiguration,
        models: [ModelConfiguration],
        defaultUpstream: String,
        latency: LatencyBoard = LatencyBoard()
    ) {
        self.routing = routing
        self.modelUpstreams = Dictionary(models.map { ($0.name, $0.upstream) }, uniquingKeysWith: { first, _ in first })
        self.prices = Dictionary(
            models.map {
                (
                    $0.name,
                    (
                        NSDecimalNumber(decimal: $0.inputUSDPerMTok).doubleValue,
                        NSDecimalNumber(decimal: $0.outputUSDPerMTok).doubleValue
                    )
                )
            },
            uniquingKeysWith: { first, _ in first }
        )
        self.appMaxTier = Dictionary(
            routing.apps.map { ($0.name, $0.maxTier) },
            uniquingKeysWith: { first, _ in first }
        )
        self.defaultUpstream = defaultUpstream
        self.latency = latency
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
    ///   - overrides: a forced tier, a cost ceiling and the app, from the request's headers.
    public func select(
        requestedModel: String?,
        pinHeader: Bool,
        score: ComplexityScore,
        overrides: RouteOverrides = RouteOverrides()
    ) -> RouteDecision {
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
        let tiers = self.routing.tiers
        guard !tiers.isEmpty else {
            return self.keep(requestedModel ?? "", score: score, reason: .passthrough)
        }
        var index: Int
        var limit: RouteDecision.Limit?
        if let forced = overrides.forcedTier.flatMap(self.tierIndex(named:)) {
            index = forced
            limit = .forced
        } else {
            index = self.strategyTier(for: score.value)
        }
        // The app's ceiling, then the cost ceiling: each only lowers the tier.
        if let ceiling = self.appMaxTier[overrides.app], index > ceiling {
            index = ceiling
            limit = .app
        }
        if let maxCost = overrides.maxCostUSD {
            while index > 0 && self.estimatedCost(of: tiers[index].model, overrides) > maxCost {
                index -= 1
                limit = .cost
            }
        }
        let model = tiers[index].model
        return RouteDecision(
            model: model,
            upstream: self.modelUpstreams[model] ?? self.defaultUpstream,
            requestedModel: requestedModel,
            score: score,
            reason: .tier(index),
            limit: limit
        )
    }

    /// The tier the configured strategy picks for `value`.
    func strategyTier(for value: Double) -> Int {
        let tiers = self.routing.tiers
        func first(above value: Double) -> Int {
            tiers.firstIndex { value < $0.maxScore } ?? (tiers.count - 1)
        }
        switch self.routing.strategy {
        case .cost:
            return first(above: value)
        case .quality:
            return first(above: value + self.routing.strategyMargin)
        case .balanced:
            return first(above: value + self.routing.strategyMargin / 2)
        case .latency:
            let cheapest = first(above: value)
            guard var best = self.latency.latency(of: tiers[cheapest].model) else { return cheapest }
            var chosen = cheapest
            for index in (cheapest + 1)..<tiers.count {
                if let seconds = self.latency.latency(of: tiers[index].model), seconds < best {
                    best = seconds
                    chosen = index
                }
            }
            return chosen
        }
    }

    /// A tier by its index (`"1"`) or its model's name; `nil` when there is none.
    public func tierIndex(named name: String) -> Int? {
        let tiers = self.routing.tiers
        if let index = Int(name), tiers.indices.contains(index) { return index }
        return tiers.firstIndex { $0.model == name }
    }

    /// The request's cost on `model` before it is sent, in US dollars.
    func estimatedCost(of model: String, _ overrides: RouteOverrides) -> Double {
        guard let price = self.prices[model] else { return 0 }
        let output = overrides.maxOutputTokens ?? RouteOverrides.assumedOutputTokens
        return (Double(overrides.estimatedPromptTokens) * price.input + Double(output) * price.output) / 1_000_000
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
