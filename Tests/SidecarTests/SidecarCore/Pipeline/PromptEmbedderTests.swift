import Foundation
import Testing

@testable import SidecarCore
@testable import SidecarEmbedding

@Suite(.enabled(if: MiniLMFixture.modelIsInstalled, "needs the MiniLM files (scripts/install-model.sh)"))
struct PromptEmbedderTests {
    static func embed(
        _ embedder: PromptEmbedder,
        _ text: String,
        budget: Int,
        keepCut: Bool = false
    ) async -> Result<PromptEmbedder.Embedding, PromptEmbedder.Skip> {
        await withCheckedContinuation { continuation in
            embedder.embed(text, budgetMilliseconds: budget, keepCut: keepCut) { continuation.resume(returning: $0) }
        }
    }

    @Test func aPromptWithNothingAheadIsAlwaysEmbeddedEvenOverTheBudget() async throws {
        let model = try MiniLMEmbedder(modelDirectory: MiniLMFixture.modelDirectory)
        // A budget no embedding can meet: each prompt still runs when nothing is queued ahead
        // of it (a slow one must not shut every later lookup out).
        let embedder = PromptEmbedder(model: model)
        defer { embedder.shutdown() }
        for text in ["How do I restart my router?", "How can I restart my router?"] {
            let embedding = try #require(try? await Self.embed(embedder, text, budget: 0).get())
            #expect(embedding.vector.count == 384)
            #expect(!embedding.cut)
            #expect(abs(embedding.vector.reduce(0) { $0 + $1 * $1 } - 1) < 1e-3)
        }
    }

    @Test func aPromptOverTheModelsLengthIsEmbeddedOnlyWhenACutEmbeddingIsWanted() async throws {
        let model = try MiniLMEmbedder(modelDirectory: MiniLMFixture.modelDirectory)
        let embedder = PromptEmbedder(model: model)
        defer { embedder.shutdown() }
        let long = Array(repeating: "word", count: 400).joined(separator: " ")
        #expect(await Self.embed(embedder, long, budget: 1_000) == .failure(.tooLong))
        // The router routes by the prompt's start: it gets the embedding, marked as cut.
        let cut = try #require(try? await Self.embed(embedder, long, budget: 1_000, keepCut: true).get())
        #expect(cut.cut)
        #expect(cut.vector.count == 384)
    }
}
