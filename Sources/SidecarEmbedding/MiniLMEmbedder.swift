import Foundation
import Synchronization

/// A native all-MiniLM-L6-v2 sentence embedder: BERT WordPiece tokenisation, the 6-layer
/// encoder, mean pooling and L2 normalisation, producing 384-dimensional unit vectors matching
/// sentence-transformers' output (cosine >= 0.9999).
///
/// The dense layers run in bfloat16 with FP32 accumulation (AVX-512 BF16) on CPUs that have it
/// and in FP32 with OpenBLAS otherwise; attention is FP32 throughout, in one AVX-512 kernel per
/// sequence where the CPU has AVX-512 F and with OpenBLAS otherwise.
///
/// The model directory holds HuggingFace's `config.json`, `vocab.txt`, optionally
/// `tokenizer_config.json`, and `model.safetensors` (F32); `scripts/install-model.sh` installs
/// them. Calls block the calling thread (one core each); run them off the cooperative pool.
///
/// ```swift
/// let embedder = try MiniLMEmbedder(modelDirectory: URL(fileURLWithPath: "models/all-MiniLM-L6-v2"))
/// let vectors = try embedder.embedBlocking(["What is the capital of France?"])
/// // vectors[0].count == 384, and its L2 norm is 1
/// ```
public final class MiniLMEmbedder: Sendable {
    /// The most tokens per text, `[CLS]` and `[SEP]` included (sentence-transformers' limit).
    public static let maxSequenceLength = 256

    /// The most packed tokens one forward pass processes; larger batches are split. GEMMs are
    /// as efficient at this size as at any larger one, and a workspace stays under 16 MB.
    package static let maxRowsPerPass = 1024

    private let tokenizer: BertTokenizer
    private let encoder: BertEncoder
    private let workspaces: Mutex<[EncoderWorkspace]>

    /// A stable name for the model, used in cache keys and metrics labels.
    public let modelName: String

    /// The length of every embedding (384 for all-MiniLM-L6-v2).
    public var dimensions: Int { self.encoder.configuration.hiddenSize }

    /// The dense layers' arithmetic in use.
    package var precision: DensePrecision { self.encoder.weights.precision }

    /// Loads the tokenizer, configuration and weights from `modelDirectory`.
    ///
    /// - Throws: ``EmbeddingError`` if a file is missing or malformed, a tensor is missing, not
    ///   F32 or of the wrong shape.
    public convenience init(modelDirectory: URL, modelName: String = "all-MiniLM-L6-v2") throws {
        try self.init(modelDirectory: modelDirectory, modelName: modelName, precision: .fastestSupported)
    }

    /// Loads the model with the dense layers in `precision`, or FP32 where the CPU does not
    /// support it (tests use this to exercise both paths).
    package init(modelDirectory: URL, modelName: String = "all-MiniLM-L6-v2", precision: DensePrecision) throws {
        let configuration = try BertConfiguration(contentsOf: modelDirectory.appendingPathComponent("config.json"))
        let maxLength = min(Self.maxSequenceLength, configuration.maxPositions)
        let tokenizer = try BertTokenizer(directory: modelDirectory, maxLength: maxLength)
        guard tokenizer.vocabulary.count <= configuration.vocabularySize else {
            throw EmbeddingError.invalidVocabulary(
                "vocab.txt has \(tokenizer.vocabulary.count) tokens, the model \(configuration.vocabularySize)"
            )
        }
        let file = try SafetensorsFile(contentsOf: modelDirectory.appendingPathComponent("model.safetensors"))
        let weights = try BertWeights(file: file, configuration: configuration, precision: precision)
        BLASMatrix.useCallerThreadOnly()
        self.tokenizer = tokenizer
        self.encoder = BertEncoder(weights: weights)
        self.modelName = modelName
        self.workspaces = Mutex([])
    }

    /// The token ids of `text`: `[CLS]`, WordPiece ids, `[SEP]`, at most 256 in all.
    public func tokenize(_ text: String) -> [Int32] {
        self.tokenizer.encode(text)
    }

    /// Embeds `texts` in one batch, returning one unit-length vector per text, in order.
    ///
    /// Texts are tokenised, sorted by length and packed without padding (attention is confined
    /// to each text's own tokens), so results do not depend on what else is in the batch.
    public func embedBlocking(_ texts: [String]) throws -> [[Float]] {
        guard !texts.isEmpty else { return [] }
        let sequences = texts.map(self.tokenizer.encode)
        let order = sequences.indices.sorted { sequences[$0].count < sequences[$1].count }
        let workspace = self.takeWorkspace()
        defer { self.returnWorkspace(workspace) }

        var results = [[Float]](repeating: [], count: texts.count)
        var passStart = 0
        while passStart < order.count {
            var passEnd = passStart
            var rows = 0
            while passEnd < order.count,
                passEnd == passStart || rows + sequences[order[passEnd]].count <= Self.maxRowsPerPass
            {
                rows += sequences[order[passEnd]].count
                passEnd += 1
            }
            let pass = order[passStart..<passEnd]
            let vectors = self.encoder.embed(pass.map { sequences[$0] }, workspace: workspace)
            for (index, vector) in zip(pass, vectors) {
                results[index] = vector
            }
            passStart = passEnd
        }
        return results
    }

    private func takeWorkspace() -> EncoderWorkspace {
        let reused = self.workspaces.withLock { $0.popLast() }
        return reused
            ?? EncoderWorkspace(
                hiddenSize: self.encoder.configuration.hiddenSize,
                intermediateSize: self.encoder.configuration.intermediateSize
            )
    }

    private func returnWorkspace(_ workspace: EncoderWorkspace) {
        self.workspaces.withLock { $0.append(workspace) }
    }
}
