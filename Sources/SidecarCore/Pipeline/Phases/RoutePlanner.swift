import Foundation
import NIOHTTP1
import SidecarPolicy

/// What the route phase decided: the model to ask, the fallbacks after it, and how to forward.
struct RoutePlan {
    /// The routing decision for a completion (`nil` for embeddings and pass-through calls).
    var decision: RouteDecision?
    var forwarding: ForwardingConfiguration
    var outgoing: OutgoingRequest
    /// The app the request is attributed to and its spend today before it (priced calls only).
    var app = AppAttribution.defaultApp
    var spentToday: Double?
}

/// Route phase: tiers, pins and overrides turn the score into ordered candidates (the routed
/// model, then its configured fallbacks), with the deadline and retry rules for forwarding.
final class RoutePlanner: Sendable {
    let selector: RouteSelector
    let models: [String: ModelConfiguration]
    let defaultUpstream: String
    let ollamaUpstream: String
    let pinHeader: String
    let timeouts: TimeoutConfiguration
    let policy: RetryPolicy
    let maxResponseBytes: Int
    let ledger: SpendLedger
    /// `[spend] budgets`: US dollars per app per UTC day.
    let budgets: [String: Double]
    let metrics: SidecarMetrics

    init(
        selector: RouteSelector,
        models: [String: ModelConfiguration],
        defaultUpstream: String,
        ollamaUpstream: String,
        pinHeader: String,
        timeouts: TimeoutConfiguration,
        policy: RetryPolicy,
        maxResponseBytes: Int,
        ledger: SpendLedger,
        budgets: [String: Double],
        metrics: SidecarMetrics
    ) {
        self.selector = selector
        self.models = models
        self.defaultUpstream = defaultUpstream
        self.ollamaUpstream = ollamaUpstream
        self.pinHeader = pinHeader
        self.timeouts = timeouts
        self.policy = policy
        self.maxResponseBytes = maxResponseBytes
        self.ledger = ledger
        self.budgets = budgets
        self.metrics = metrics
    }

    /// - Throws: a 400 for a forced tier that does not exist or a cost ceiling that is not a number.
    func route(
        _ request: ProxyRequest,
        decoded: DecodedRequest,
        score: ComplexityScore?,
        promptTokens: @autoclosure () -> Int
    ) throws(SidecarError) -> RoutePlan {
        let deadline = request.receivedAt + self.timeouts.request
        var forwarding = ForwardingConfiguration(
            candidates: [],
            deadline: deadline,
            firstByteTimeout: self.timeouts.firstByte,
            policy: self.policy,
            retriesStatuses: true,
            answer: .whole,
            maxResponseBytes: self.maxResponseBytes
        )
        let app = request.app
        // Priced calls only: their app's spend today (a header on the answer), and the budget.
        let spent = decoded.isPassThrough ? nil : self.ledger.spentToday(app: app)
        if let spent, let budget = self.budgets[app] {
            // The request after the budget is spent is refused until midnight UTC.
            if spent >= budget {
                self.metrics.recordBudgetRefusal(app: app)
                let midnight = Double(SpendLedger.today() + 1) * 86_400 - Date().timeIntervalSince1970
                throw .budgetExceeded(app: app, budget: budget, spent: spent, retryAfter: .seconds(max(1, midnight)))
            }
        }
        switch decoded {
        case .completion(let view, let layout):
            let decision = self.selector.select(
                requestedModel: view.model,
                pinHeader: Self.isPinned(request.headers, header: self.pinHeader),
                score: score ?? ComplexityScore(value: 0, features: []),
                overrides: try self.overrides(
                    request.headers,
                    app: app,
                    maxTokens: view.maxTokens,
                    promptTokens: promptTokens()
                )
            )
            forwarding.candidates = self.candidates(for: decision)
            forwarding.answer = view.isStreaming ? .eventStream : .whole
            let addUsage = view.isStreaming && view.streamOptions?.includeUsage != true
            let outgoing = OutgoingRequest(
                request: request,
                body: .completion(requestedModel: view.model, addUsage: addUsage, layout: layout),
                deadline: deadline
            )
            return RoutePlan(
                decision: decision,
                forwarding: forwarding,
                outgoing: outgoing,
                app: app,
                spentToday: spent
            )
        case .embeddings(let model):
            forwarding.candidates = [UpstreamCandidate(model: model, upstream: self.selector.owner(of: model))]
            return RoutePlan(
                decision: nil,
                forwarding: forwarding,
                outgoing: OutgoingRequest(request: request, body: .unchanged, deadline: deadline),
                app: app,
                spentToday: spent
            )
        case .passThrough(let native):
            // Not idempotent in general: retry connection failures only, never answered statuses.
            forwarding.retriesStatuses = false
            forwarding.answer = .passThrough
            forwarding.candidates = [
                UpstreamCandidate(model: "", upstream: native ? self.ollamaUpstream : self.defaultUpstream)
            ]
            return RoutePlan(
                decision: nil,
                forwarding: forwarding,
                outgoing: OutgoingRequest(request: request, body: .passThrough(native: native), deadline: deadline),
                app: app
            )
        }
    }

    /// The decision's model, then (for routed requests) its configured fallbacks.
    func candidates(for decision: RouteDecision) -> [UpstreamCandidate] {
        var candidates = [UpstreamCandidate(model: decision.model, upstream: decision.upstream)]
        guard case .tier = decision.reason, let model = self.models[decision.model] else { return candidates }
        for fallback in model.fallbacks where !candidates.contains(where: { $0.model == fallback }) {
            candidates.append(UpstreamCandidate(model: fallback, upstream: self.selector.owner(of: fallback)))
        }
        return candidates
    }

    /// The route's overrides from the request's headers (nothing read when none is set).
    func overrides(
        _ headers: HTTPHeaders,
        app: String,
        maxTokens: Int?,
        promptTokens: @autoclosure () -> Int
    ) throws(SidecarError) -> RouteOverrides {
        var overrides = RouteOverrides(app: app)
        if let tier = headers.first(name: SidecarHeaders.tier.rawName) {
            guard self.selector.tierIndex(named: tier) != nil else {
                throw .invalidRequest(
                    "\(SidecarHeaders.tier.rawName) names no tier: \"\(tier)\" (a tier's index or its model).",
                    code: "invalid_tier"
                )
            }
            overrides.forcedTier = tier
        }
        if let text = headers.first(name: SidecarHeaders.maxCost.rawName) {
            guard let ceiling = Double(text.trimmingCharacters(in: .whitespaces)), ceiling.isFinite, ceiling >= 0 else {
                throw .invalidRequest(
                    "\(SidecarHeaders.maxCost.rawName) must be a dollar amount such as 0.01, found \"\(text)\".",
                    code: "invalid_max_cost"
                )
            }
            overrides.maxCostUSD = ceiling
            overrides.estimatedPromptTokens = promptTokens()
            overrides.maxOutputTokens = maxTokens
        }
        return overrides
    }

    static func isPinned(_ headers: HTTPHeaders, header: String) -> Bool {
        guard let value = headers.first(name: header) else { return false }
        let lowered = value.lowercased()
        return !(lowered.isEmpty || lowered == "0" || lowered == "false" || lowered == "no")
    }
}
