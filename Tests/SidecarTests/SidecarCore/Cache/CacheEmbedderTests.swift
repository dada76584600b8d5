import Foundation
import Testing

@testable import SidecarCore
@testable import SidecarEmbedding

@Suite(.enabled(if: MiniLMFixture.modelIsInstalled, "needs the MiniLM files (scripts/install-model.sh)"))
struct CacheEmbedderTests {
    static func embed(_ embedder: CacheEmbedder, _ text: String) async -> Result<[Float], CacheEmbedder.Skip> {
        await withCheckedContinuation { continuation in
            embedder.embed(text) { continuation.resume(returning: $0) }
        }
    }

    @Test func aPromptWithNothingAheadIsAlwaysEmbeddedEvenOverTheBudget() async throws {
        let model = try MiniLMEmbedder(modelDirectory: MiniLMFixture.modelDirectory)
        // A budget no embedding can meet: each prompt still runs when nothing is queued ahead
        // of it (a slow one must not shut every later lookup out).
        let embedder = CacheEmbedder(model: model, budgetMilliseconds: 0)
        defer { embedder.shutdown() }
        for text in ["How do I restart my router?", "How can I restart my router?"] {
            let vector = try #require(try? await Self.embed(embedder, text).get())
            #expect(vector.count == 384)
            #expect(abs(vector.reduce(0) { $0 + $1 * $1 } - 1) < 1e-3)
        }
    }

    @Test func aPromptOverTheModelsLengthIsNotEmbedded() async throws {
        let model = try MiniLMEmbedder(modelDirectory: MiniLMFixture.modelDirectory)
        let embedder = CacheEmbedder(model: model, budgetMilliseconds: 1_000)
        defer { embedder.shutdown() }
        let long = Array(repeating: "word", count: 400).joined(separator: " ")
        #expect(await Self.embed(embedder, long) == .failure(.tooLong))
    }
}
