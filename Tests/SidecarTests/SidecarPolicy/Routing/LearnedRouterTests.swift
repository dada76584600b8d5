import Foundation
import Testing

@testable import SidecarPolicy

@Suite struct LearnedRouterTests {
    /// A 3-d "embedding" plus two features, through 5 -> 2 (relu) -> 1, twice (two members).
    static let json = """
        {"format": "llm-sidecar-router/1", "fit_version": "test-1", "data_sha256": "abc", "data_lines": 3,
         "embedding": {"model": "all-MiniLM-L6-v2", "dim": 3}, "features": ["length", "heuristic"],
         "input_mean": [0, 0, 0, 0.5, 0.5], "input_scale": [1, 1, 1, 0.5, 0.5],
         "members": [
           {"layers": [{"in": 5, "out": 2, "activation": "relu", "weights": [1, 0, 0, 1, 0,  0, 1, 0, 0, -1], "bias": [0, 0.5]},
                       {"in": 2, "out": 1, "activation": "linear", "weights": [2, -1], "bias": [0.25]}]},
           {"layers": [{"in": 5, "out": 1, "activation": "linear", "weights": [0, 0, 1, 0, 0], "bias": [0]}]}
         ],
         "quantiles": {"raw": [-1, 0, 1], "score": [0, 0.5, 1]},
         "heuristic_quantiles": {"raw": [0, 0.2, 1], "score": [0, 0.8, 1]}}
        """

    static func router(_ text: String = Self.json) throws -> LearnedRouter {
        try LearnedRouter(json: Data(text.utf8), directory: "test", path: "test/router.json")
    }

    @Test func scoresAsTheFormatSays() throws {
        let router = try Self.router()
        let heuristic = ComplexityScore(
            value: 0.75,
            features: [("length", 1.0), ("code", 0)]
        )
        // z = [0.2, 0.4, -0.1, (1 - 0.5) / 0.5, (0.75 - 0.5) / 0.5] = [0.2, 0.4, -0.1, 1, 0.5]
        // member 1: h = relu([0.2 + 1, 0.4 - 0.5 + 0.5]) = [1.2, 0.4]; out = 2.4 - 0.4 + 0.25 = 2.25
        // member 2: out = -0.1; raw = (2.25 - 0.1) / 2 = 1.075 -> clamped to 1
        let raw = try #require(router.raw(embedding: [0.2, 0.4, -0.1], heuristic: heuristic))
        #expect(abs(raw - 1.075) < 1e-6)
        #expect(router.score(embedding: [0.2, 0.4, -0.1], heuristic: heuristic) == 1)
        // Between knots: linear.
        let small = try #require(router.raw(embedding: [0, 0, -0.5], heuristic: .init(value: 0.5, features: [])))
        // z = [0, 0, -0.5, -1, 0]: member 1 relu([-1, 0.5]) = [0, 0.5] -> -0.5 + 0.25 = -0.25; member 2: -0.5
        #expect(abs(small - -0.375) < 1e-6)
        let score = try #require(router.score(embedding: [0, 0, -0.5], heuristic: .init(value: 0.5, features: [])))
        #expect(abs(score - 0.3125) < 1e-6)
        #expect(router.score(embedding: [1, 2], heuristic: heuristic) == nil)
        #expect(abs(router.heuristicOnSameScale(0.1) - 0.4) < 1e-9)
        #expect(router.provenance.fitVersion == "test-1")
    }

    @Test func theRoutingScorerSaysWhichScorerDecided() throws {
        let scorer = RoutingScorer(learned: try Self.router())
        let input = ScoringInput(prompt: "hello")
        let heuristic = HeuristicComplexityScorer().score(input)
        let fallback = scorer.score(input, embedding: nil)
        #expect(fallback.router == .heuristic)
        #expect(fallback.value == (try Self.router()).heuristicOnSameScale(heuristic.value))
        let learned = scorer.score(input, embedding: [0, 0, 0.5])
        #expect(learned.router == .learned)
        #expect(learned.features.contains { $0.name == "heuristic" && $0.value == heuristic.value })
        #expect(RoutingScorer().score(input, embedding: [0, 0, 0.5]).router == .heuristic)
    }

    @Test func aBrokenFileIsRefusedWithItsReason() throws {
        let cases: [(String, String)] = [
            ("\"llm-sidecar-router/1\"", "\"llm-sidecar-router/9\""),
            ("\"heuristic\"]", "\"colour\"]"),
            (
                "\"out\": 1, \"activation\": \"linear\", \"weights\": [2, -1]",
                "\"out\": 1, \"activation\": \"tanh\", \"weights\": [2, -1]"
            ),
            ("\"input_scale\": [1, 1, 1, 0.5, 0.5]", "\"input_scale\": [1, 1, 1, 0, 0.5]"),
            ("\"score\": [0, 0.5, 1]", "\"score\": [0, 0.5]"),
            ("[1, 0, 0, 1, 0,  0, 1, 0, 0, -1]", "[1, 0, 0, 1, 0]"),
        ]
        for (original, broken) in cases {
            #expect(Self.json.contains(original))
            #expect(throws: RouterLoadError.self) {
                try Self.router(Self.json.replacingOccurrences(of: original, with: broken))
            }
        }
        #expect(throws: RouterLoadError.self) { try LearnedRouter.load(directory: "/nonexistent/router") }
    }
}
