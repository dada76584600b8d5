import NIOCore

/// One model to try, and the upstream to use when the model is not configured (pinned ids).
struct UpstreamCandidate: Sendable, Equatable {
    var model: String
    var upstream: String
}

/// What the synchronous stages decided for a forwarded request: the candidates in order and
/// how to read and relay the answer.
struct ForwardPlan: Sendable {
    enum Kind: Sendable {
        /// Chat or legacy completions: scored, routed, rewritten, priced.
        case generate(Completion)
        /// Remote embeddings: forwarded to the model's owner, priced from `usage`.
        case embed(model: String)
        /// Other `/v1/*` paths and Ollama's `/api/*`: forwarded unchanged, relayed as they stream.
        case passThrough(native: Bool)
    }

    /// What the stages decided for a chat or legacy completion.
    struct Completion: Sendable {
        var score: Double
        /// Why the model was chosen (`X-Sidecar-Route`).
        var route: String
        var requestedModel: String?
        var streaming: Bool
        var clientAskedForUsage: Bool
        /// Member positions from the fast parser, so the rewrite need not scan again.
        var layout: RequestBodyLayout?
    }

    var request: ProxyRequest
    var kind: Kind
    var candidates: [UpstreamCandidate]
    var deadline: ContinuousClock.Instant
    /// Retry 429/5xx answers (off for non-idempotent pass-through calls).
    var retryStatuses: Bool
    /// Read the whole body inside the attempt (non-streamed answers), so a body cut short is
    /// retried too; otherwise the exchange commits at the first body chunk.
    var readWholeBody: Bool

    /// The model a response is priced and labelled with, for the candidate that served it.
    func servedModel(_ candidate: UpstreamCandidate) -> String {
        switch self.kind {
        case .generate, .embed: return candidate.model
        case .passThrough: return ""
        }
    }
}
