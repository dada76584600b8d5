import Foundation

/// The shape of a BERT encoder, read from HuggingFace's `config.json`.
package struct BertConfiguration: Sendable, Equatable {
    package var vocabularySize: Int
    package var hiddenSize: Int
    package var layerCount: Int
    package var headCount: Int
    package var intermediateSize: Int
    package var maxPositions: Int
    package var typeVocabularySize: Int
    package var layerNormEpsilon: Float

    /// The width of one attention head.
    package var headSize: Int { self.hiddenSize / self.headCount }

    /// all-MiniLM-L6-v2's configuration.
    package static let miniLML6 = BertConfiguration(
        vocabularySize: 30522,
        hiddenSize: 384,
        layerCount: 6,
        headCount: 12,
        intermediateSize: 1536,
        maxPositions: 512,
        typeVocabularySize: 2,
        layerNormEpsilon: 1e-12
    )

    private struct File: Decodable {
        var vocabularySize: Int
        var hiddenSize: Int
        var layerCount: Int
        var headCount: Int
        var intermediateSize: Int
        var maxPositions: Int
        var typeVocabularySize: Int?
        var layerNormEpsilon: Double?
        var hiddenActivation: String?
        var positionEmbeddingType: String?

        enum CodingKeys: String, CodingKey {
            case vocabularySize = "vocab_size"
            case hiddenSize = "hidden_size"
            case layerCount = "num_hidden_layers"
            case headCount = "num_attention_heads"
            case intermediateSize = "intermediate_size"
            case maxPositions = "max_position_embeddings"
            case typeVocabularySize = "type_vocab_size"
            case layerNormEpsilon = "layer_norm_eps"
            case hiddenActivation = "hidden_act"
            case positionEmbeddingType = "position_embedding_type"
        }
    }

    package init(
        vocabularySize: Int,
        hiddenSize: Int,
        layerCount: Int,
        headCount: Int,
        intermediateSize: Int,
        maxPositions: Int,
        typeVocabularySize: Int,
        layerNormEpsilon: Float
    ) {
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.intermediateSize = intermediateSize
        self.maxPositions = maxPositions
        self.typeVocabularySize = typeVocabularySize
        self.layerNormEpsilon = layerNormEpsilon
    }

    /// Parses `config.json`; rejects activations and position embeddings this encoder lacks.
    package init(contentsOf url: URL) throws {
        guard let data = try? Data(contentsOf: url) else {
            throw EmbeddingError.modelFileMissing(url.path)
        }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: data)
        } catch {
            throw EmbeddingError.invalidConfiguration("\(url.path): \(error)")
        }
        if let activation = file.hiddenActivation, activation != "gelu" {
            throw EmbeddingError.invalidConfiguration("hidden_act \(activation) is not supported, only gelu")
        }
        if let positions = file.positionEmbeddingType, positions != "absolute" {
            throw EmbeddingError.invalidConfiguration("position_embedding_type \(positions) is not supported")
        }
        self.init(
            vocabularySize: file.vocabularySize,
            hiddenSize: file.hiddenSize,
            layerCount: file.layerCount,
            headCount: file.headCount,
            intermediateSize: file.intermediateSize,
            maxPositions: file.maxPositions,
            typeVocabularySize: file.typeVocabularySize ?? 2,
            layerNormEpsilon: Float(file.layerNormEpsilon ?? 1e-12)
        )
        let valid =
            self.hiddenSize > 0 && self.headCount > 0 && self.hiddenSize % self.headCount == 0
            && self.hiddenSize % 8 == 0 && self.layerCount > 0 && self.intermediateSize > 0
            && self.intermediateSize % 8 == 0 && self.maxPositions > 0 && self.vocabularySize > 0
            && self.typeVocabularySize > 0
        guard valid else {
            throw EmbeddingError.invalidConfiguration("\(url.path): inconsistent sizes")
        }
    }
}
