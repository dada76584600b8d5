import Testing

@testable import SidecarCore
@testable import SidecarPolicy

@Suite struct ComplexityScorerTests {
    let scorer = HeuristicComplexityScorer()

    func score(_ prompt: String) -> Double {
        scorer.score(ScoringInput(prompt: prompt)).value
    }

    @Test func trivialQuestionScoresLow() {
        #expect(score("What is 2+2?") < 0.2)
        #expect(score("Hi!") < 0.2)
    }

    @Test func longMultiPartDesignPromptScoresHigh() {
        #expect(score(SidecarHarness.hardPrompt) > 0.7)
    }

    @Test func scoresStayInUnitInterval() {
        #expect(score("") >= 0)
        #expect(score(String(repeating: "analyze design prove compare 1. 2. 3. ", count: 2000)) <= 1)
    }

    @Test func reasoningVocabularyRaisesTheScore() {
        #expect(
            score("Tell me about databases.") < score("Analyze and compare database designs, explain the trade-offs.")
        )
    }

    @Test func codeRaisesTheScore() {
        #expect(score("Tell me a joke about cats.") < score("Fix this python function: ```def f(x): return x```"))
    }

    @Test func featuresAreNamedInAStableOrder() {
        let names = scorer.score(ScoringInput(prompt: "x")).features.map(\.name)
        #expect(names == ["length", "reasoning", "parts", "code", "math", "constraints", "turns", "tools", "media"])
    }

    @Test func toolsAndConversationTurnsCount() {
        let plain = scorer.score(ScoringInput(messages: [.init(role: "user", text: "book a table")])).value
        let withTools = scorer.score(ScoringInput(messages: [.init(role: "user", text: "book a table")], toolCount: 2))
            .value
        #expect(withTools > plain)
    }
}
