/// The score the route phase uses: the learned router's when it is loaded and the prompt's
/// embedding is at hand, else the heuristic's (on the learned score's scale when a router is
/// loaded, so the tiers mean the same whichever decided). The score says which one decided.
///
/// ```swift
/// let scorer = RoutingScorer(learned: try LearnedRouter.load(directory: "models/router"))
/// let score = scorer.score(input, embedding: vector)   // score.router == .learned
/// ```
public struct RoutingScorer: Sendable {
    public let heuristic: any ComplexityScorer
    public let learned: LearnedRouter?

    public init(heuristic: any ComplexityScorer = HeuristicComplexityScorer(), learned: LearnedRouter? = nil) {
        self.heuristic = heuristic
        self.learned = learned
    }

    /// Whether an embedding would change the decision (a learned router is loaded).
    public var wantsEmbedding: Bool { self.learned != nil }

    public func score(_ input: ScoringInput, embedding: [Float]?) -> ComplexityScore {
        var score = self.heuristic.score(input)
        guard let learned = self.learned else { return score }
        let heuristicValue = score.value
        if let embedding, let value = learned.score(embedding: embedding, heuristic: score) {
            score.value = value
            score.router = .learned
        } else {
            score.value = learned.heuristicOnSameScale(heuristicValue)
        }
        score.heuristicValue = heuristicValue
        return score
    }
}

/// `llm-sidecar calibrate`: the threshold that sends a share of a traffic sample to the strong tier.
public enum CalibrationThreshold {
    /// The lowest score such that at most `strongShare` of `scores` are at or above it (ties
    /// stay together, on the strong side only if they fit).
    public static func threshold(scores: [Double], strongShare: Double) -> Double {
        let sorted = scores.sorted()
        let strongCount = Int((strongShare * Double(sorted.count)).rounded())
        guard strongCount > 0 else { return (sorted.last ?? 1) + 1e-6 }
        guard strongCount < sorted.count else { return sorted.first ?? 0 }
        // The boundary: everything from index `count - strongCount` up goes strong.
        let boundary = sorted[sorted.count - strongCount]
        let below = sorted[sorted.count - strongCount - 1]
        return below < boundary ? (below + boundary) / 2 : min(boundary + 1e-9, 1.01)
    }
}
