import Testing

@testable import SidecarCore
@testable import SidecarPolicy

@Suite struct RouteStrategyTests {
    /// Three tiers: small-local below 0.4, big-cloud below 0.8, embed-cloud (priced) above.
    static func selector(_ routing: String = "") throws -> RouteSelector {
        let configuration = try SidecarHarness.configuration(port: 1, routing: routing)
        var routingConfiguration = configuration.routing
        routingConfiguration.tiers = [
            .init(maxScore: 0.4, model: "small-local"), .init(maxScore: 0.8, model: "big-cloud"),
            .init(maxScore: 1.01, model: "embed-cloud"),
        ]
        return RouteSelector(
            routing: routingConfiguration,
            models: configuration.models,
            defaultUpstream: configuration.defaultUpstreamName
        )
    }

    static func score(_ value: Double) -> ComplexityScore { ComplexityScore(value: value, features: []) }

    static func tier(_ selector: RouteSelector, _ value: Double, _ overrides: RouteOverrides = .init()) -> Int? {
        selector.select(requestedModel: "auto", pinHeader: false, score: Self.score(value), overrides: overrides).tier
    }

    @Test func costTakesTheCheapestTierThatClearsTheScore() throws {
        let selector = try Self.selector("strategy = \"cost\"")
        #expect(Self.tier(selector, 0.30) == 0)
        #expect(Self.tier(selector, 0.39) == 0)
        #expect(Self.tier(selector, 0.70) == 1)
        #expect(Self.tier(selector, 0.95) == 2)
    }

    @Test func qualityAndBalancedMoveScoresNearABoundaryUp() throws {
        let quality = try Self.selector("strategy = \"quality\"\nstrategy_margin = 0.2")
        let balanced = try Self.selector("strategy = \"balanced\"\nstrategy_margin = 0.2")
        #expect(Self.tier(quality, 0.30) == 1)  // 0.30 + 0.2 >= 0.4
        #expect(Self.tier(balanced, 0.30) == 1)  // 0.30 + 0.1 >= 0.4
        #expect(Self.tier(balanced, 0.25) == 0)  // 0.25 + 0.1 < 0.4
        #expect(Self.tier(quality, 0.15) == 0)
        #expect(Self.tier(quality, 0.65) == 2)
    }

    @Test func latencyPicksTheFastestTierAtOrAboveCostsChoice() throws {
        let selector = try Self.selector("strategy = \"latency\"")
        // Unmeasured: cost's choice.
        #expect(Self.tier(selector, 0.1) == 0)
        selector.latency.record(model: "small-local", seconds: 0.9)
        selector.latency.record(model: "big-cloud", seconds: 0.2)
        selector.latency.record(model: "embed-cloud", seconds: 0.5)
        #expect(Self.tier(selector, 0.1) == 1)
        #expect(Self.tier(selector, 0.9) == 2)  // never below the tier that clears the score
    }

    @Test func forcedTierAppCeilingAndCostCeiling() throws {
        let selector = try Self.selector("apps = [ { name = \"batch\", max_tier = 0 } ]")
        let forced = selector.select(
            requestedModel: "auto",
            pinHeader: false,
            score: Self.score(0.1),
            overrides: .init(forcedTier: "embed-cloud")
        )
        #expect(forced.tier == 2)
        #expect(forced.routeLabel == "tier:forced")
        let capped = selector.select(
            requestedModel: "auto",
            pinHeader: false,
            score: Self.score(0.95),
            overrides: .init(app: "batch")
        )
        #expect(capped.model == "small-local")
        #expect(capped.routeLabel == "tier:app")
        #expect(Self.tier(selector, 0.95, .init(app: "other")) == 2)
        // big-cloud costs (1000 x 2.5 + 100 x 10) / 1e6 = $0.0035: a $0.001 ceiling steps down to
        // the free tier, a $0.01 one keeps it.
        let tight = RouteOverrides(maxCostUSD: 0.001, estimatedPromptTokens: 1000, maxOutputTokens: 100)
        let loose = RouteOverrides(maxCostUSD: 0.01, estimatedPromptTokens: 1000, maxOutputTokens: 100)
        #expect(Self.tier(selector, 0.7, tight) == 0)
        #expect(Self.tier(selector, 0.7, loose) == 1)
        #expect(selector.tierIndex(named: "1") == 1)
        #expect(selector.tierIndex(named: "nope") == nil)
    }

    @Test func appCeilingsAreValidatedAgainstTheTiers() throws {
        #expect(throws: ConfigurationError.self) {
            try SidecarHarness.configuration(port: 1, routing: "apps = [ { name = \"batch\", max_tier = 5 } ]")
        }
        #expect(throws: ConfigurationError.self) {
            try SidecarHarness.configuration(port: 1, routing: "strategy = \"fastest\"")
        }
    }

    @Test func calibrationSendsTheAskedShareToTheStrongTier() {
        let scores = (0..<100).map { Double($0) / 100 }
        let threshold = CalibrationThreshold.threshold(scores: scores, strongShare: 0.3)
        #expect(scores.filter { $0 >= threshold }.count == 30)
        #expect(CalibrationThreshold.threshold(scores: scores, strongShare: 0) > 0.99)
        #expect(CalibrationThreshold.threshold(scores: scores, strongShare: 1) == 0)
    }

    @Test func aConversationIsScoredByItsLastUserTurnFirstAndItsToolCalls() {
        let scorer = HeuristicComplexityScorer()
        let filler = String(repeating: "hello there. ", count: 2_000)
        let question = "Prove the theorem and derive the algorithm's complexity step by step."
        let history = ScoringInput(messages: [
            .init(role: "user", text: filler), .init(role: "assistant", text: filler),
            .init(role: "user", text: question),
        ])
        let reasoning = scorer.score(history).features.first { $0.name == "reasoning" }?.value ?? 0
        #expect(reasoning > 0.5)  // read although the history fills the inspected window
        let withTool = ScoringInput(messages: [
            .init(role: "user", text: "weather?"), .init(role: "tool", text: "{\"temp\": 3}"),
            .init(role: "user", text: "and tomorrow?"),
        ])
        #expect(scorer.score(withTool).features.first { $0.name == "tools" }?.value == 1)
        #expect(history.lastUserText == question)
    }
}
