/// Turns texts into fixed-size, L2-normalised sentence embeddings.
///
/// This is the asynchronous seam the semantic cache will depend on; the implementation,
/// ``LocalEmbedder``, wraps ``MiniLMEmbedder`` and runs it off the cooperative pool (the tests use
/// the real model when it is installed, and skip otherwise).
///
/// ```swift
/// let vectors = try await embedder.embed(["What is the capital of France?"])
/// // vectors[0].count == embedder.dimensions
/// ```
public protocol Embedder: Sendable {
    /// A stable name for the model, used in cache keys and metrics labels.
    var modelName: String { get }

    /// The length of every returned vector.
    var dimensions: Int { get }

    /// Embeds `texts`, returning one unit-length vector per text, in the same order.
    func embed(_ texts: [String]) async throws -> [[Float]]

    /// Tokens the model counts for `text`, special tokens included (for `usage`).
    func tokenCount(_ text: String) async throws -> Int
}
