import NIOHTTP1
import SidecarPolicy

/// What the route phase decided: the model to ask, the fallbacks after it, and how to forward.
struct RoutePlan {
    /// The routing decision for a completion (`nil` for embeddings and pass-through calls).
    var decision: RouteDecision?
    var forwarding: ForwardingConfiguration
    var outgoing: OutgoingRequest
}

/// Route phase: tiers, pins and overrides turn the score into ordered candidates (the routed
/// model, then its configured fallbacks), with the deadline and retry rules for forwarding.
struct RoutePlanner: Sendable {
    let selector: RouteSelector
    let models: [String: ModelConfiguration]
    let defaultUpstream: String
    let ollamaUpstream: String
    let pinHeader: String
    let timeouts: TimeoutConfiguration
    let policy: RetryPolicy
    let maxResponseBytes: Int

    func route(_ request: ProxyRequest, decoded: DecodedRequest, score: ComplexityScore?) -> RoutePlan {
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
        switch decoded {
        case .completion(let view, let layout):
            let decision = self.selector.select(
                requestedModel: view.model,
                pinHeader: Self.isPinned(request.headers, header: self.pinHeader),
                score: score ?? ComplexityScore(value: 0, features: [])
            )
            forwarding.candidates = self.candidates(for: decision)
            forwarding.answer = view.isStreaming ? .eventStream : .whole
            let addUsage = view.isStreaming && view.streamOptions?.includeUsage != true
            let outgoing = OutgoingRequest(
                request: request,
                body: .completion(requestedModel: view.model, addUsage: addUsage, layout: layout),
                deadline: deadline
            )
            return RoutePlan(decision: decision, forwarding: forwarding, outgoing: outgoing)
        case .embeddings(let model):
            forwarding.candidates = [UpstreamCandidate(model: model, upstream: self.selector.owner(of: model))]
            return RoutePlan(
                decision: nil,
                forwarding: forwarding,
                outgoing: OutgoingRequest(request: request, body: .unchanged, deadline: deadline)
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
                outgoing: OutgoingRequest(request: request, body: .passThrough(native: native), deadline: deadline)
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

    static func isPinned(_ headers: HTTPHeaders, header: String) -> Bool {
        guard let value = headers.first(name: header) else { return false }
        let lowered = value.lowercased()
        return !(lowered.isEmpty || lowered == "0" || lowered == "false" || lowered == "no")
    }
}
