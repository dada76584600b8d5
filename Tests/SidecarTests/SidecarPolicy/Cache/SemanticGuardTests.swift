import Testing

@testable import SidecarPolicy

/// Hand-written examples for each guard of `SemanticGuard` (none is taken from the evaluation data).
@Suite struct SemanticGuardTests {
    let rule = SemanticGuard()

    func verdict(_ cached: String, _ incoming: String, _ similarity: Float = 0.96) -> SemanticGuard.Verdict {
        rule.verdict(cached: cached, incoming: incoming, similarity: similarity)
    }

    /// Same table as `MIRROR` in `scripts/tune-cache-guard`: the Python mirror must agree with the Swift rule.
    static let mirror: [(cached: String, incoming: String, similarity: Float, expected: SemanticGuard.Verdict)] = [
        ("How do I reset my router?", "how can I reset my router", 0.91, .mood),
        ("How do I reset my router?", "How can I reset my router?", 0.91, .hit),
        ("The cat is not asleep.", "The cat is asleep.", 0.95, .negation),
        ("Book 2 tickets for Friday", "Book three tickets for Friday", 0.96, .numbers),
        ("A woman is riding a horse.", "A man is riding a horse.", 0.94, .contrast),
        ("Convert this file with Pandoc", "Convert this file with Calibre", 0.95, .entities),
        ("The Lakers beat the Celtics.", "The Celtics beat the Lakers.", 0.98, .order),
        ("The child is holding a kite.", "The child is holding a balloon.", 0.90, .substitution),
        ("The child is holding a kite.", "The child is holding a balloon.", 0.95, .hit),
        ("A man is slicing an onion.", "A man is cutting an onion.", 0.86, .belowThreshold),
    ]

    @Test func agreesWithThePythonMirror() {
        for row in Self.mirror {
            let got = verdict(row.cached, row.incoming, row.similarity)
            #expect(got == row.expected, "\(row.cached) / \(row.incoming)")
        }
    }

    @Test func defaultsAreTheTunedThresholds() {
        #expect(SemanticGuard.defaultThreshold == 0.87)
        #expect(SemanticGuard.defaultSubstitutionThreshold == 0.93)
        #expect(SemanticGuard(threshold: 0.9).threshold == 0.9)
    }

    @Test func belowTheThresholdNeverHits() {
        #expect(verdict("what is a monad", "what is a monad", 0.5) == .belowThreshold)
        #expect(!rule.admits(cached: "same", incoming: "same", similarity: 0.86))
        #expect(rule.admits(cached: "same", incoming: "same", similarity: 0.87))
    }

    @Test func paraphrasesPass() {
        #expect(verdict("How do I sort a list in Python?", "how do i sort a list in python?") == .hit)
        #expect(verdict("A boy is riding his bicycle.", "A boy rides his bicycle.") == .hit)
        #expect(verdict("The girls are playing in the park.", "Two girls play in the park.") == .hit)
        #expect(verdict("The dog does not like baths.", "The dog doesn't like baths.") == .hit)
        #expect(verdict("The dog does not like baths.", "the dog doesn ' t like baths .") == .hit)
        #expect(verdict("Shares rose 3 percent in Tokyo.", "Shares were up 3 percent in Tokyo.") == .hit)
        #expect(verdict("A man is cutting bread.", "A man cuts the bread.", 0.9) == .hit)
        #expect(verdict("Storm hits the northwest coast", "Storm hits the north coast", 0.9) == .hit)
        #expect(verdict("Russia plans talks", "Russian plans talks", 0.9) == .hit)
        #expect(verdict("a white and brown dog runs", "a brown and white dog runs") == .hit)
    }

    @Test func negationMismatchRefuses() {
        #expect(verdict("Is the museum open on Sundays?", "Is the museum never open on Sundays?") == .negation)
        #expect(verdict("I can attend the meeting", "I can't attend the meeting") == .negation)
        #expect(verdict("the bridge isn ' t closed .", "the bridge is closed .") == .negation)
        #expect(verdict("I never said no.", "I did not say no.") == .hit)  // two negations each: same parity
    }

    @Test func differentNumbersRefuse() {
        #expect(verdict("What is 12 times 7?", "What is 12 times 8?") == .numbers)
        #expect(verdict("Flights for two adults", "Flights for 3 adults") == .numbers)
        #expect(verdict("The rent went up 1,200 dollars", "The rent went up 1200 dollars") == .hit)
        #expect(verdict("Version 2.0 release notes", "Version 2 release notes") == .hit)
        #expect(verdict("Men are sitting on a bench.", "Two men are sitting on a bench.") == .hit)
    }

    @Test func contrastingWordsRefuse() {
        #expect(verdict("A cat is sleeping on the sofa.", "A dog is sleeping on the sofa.") == .contrast)
        #expect(verdict("She plays the guitar.", "She plays the piano.") == .contrast)
        #expect(verdict("Is the shop open on Monday?", "Is the shop open on Tuesday?") == .contrast)
        #expect(verdict("Prices went up in March", "Prices went down in March") == .contrast)
        #expect(verdict("Why is the sky blue?", "How is the sky blue?") == .contrast)
        #expect(verdict("A boy is eating an apple.", "A guy is eating an apple.") == .hit)  // one group
        #expect(verdict("A grey car is parked.", "A gray car is parked.") == .hit)
    }

    @Test func differentNamesRefuse() {
        #expect(verdict("How do I install Rust on Ubuntu?", "How do I install Go on Ubuntu?") == .entities)
        #expect(verdict("Who wrote Hamlet?", "who wrote hamlet?") == .hit)
        #expect(verdict("Tell me about Paris. Paris is nice.", "Tell me about Paris. It is nice.") == .hit)
    }

    @Test func questionAgainstStatementRefuses() {
        #expect(verdict("Is it safe to swim here?", "It is safe to swim here.") == .mood)
    }

    @Test func swappedRolesRefuse() {
        #expect(verdict("a teacher thanks the student", "the student thanks a teacher") == .order)
        #expect(verdict("Does Alice owe Bob money?", "Does Bob owe Alice money?") == .order)
        #expect(verdict("Paint the door after the wall.", "After the wall, paint the door.") == .hit)
    }

    @Test func oneSwappedWordNeedsAVeryCloseEmbedding() {
        #expect(verdict("Recipe for lemon cake", "Recipe for carrot cake", 0.92) == .substitution)
        #expect(verdict("Recipe for lemon cake", "Recipe for carrot cake", 0.94) == .hit)
        #expect(verdict("Boil an egg for breakfast", "Boil two eggs for breakfast", 0.9) == .hit)
    }

    @Test func toleratesOddInput() {
        #expect(verdict("", "", 1) == .hit)
        #expect(verdict("```swift\nlet x = 1\n```", "```swift\nlet x = 2\n```") == .numbers)
        #expect(verdict("¿Qué es esto? 🙂", "¿Qué es esto? 🙂") == .hit)
    }
}
