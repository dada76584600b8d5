/// The weights of a BERT encoder, laid out once at load for the forward pass.
///
/// Dense weights are ``DenseMatrix``es of PyTorch's `[out, in]` shape, FP32 or packed to
/// bfloat16 according to the ``DensePrecision`` chosen at load; the query, key and value
/// projections are concatenated into one `[3 * hidden, hidden]` matrix so a layer needs one
/// GEMM for all three. The large word-embedding table stays in the
/// memory-mapped file; everything else is copied.
package struct BertWeights: Sendable {
    package struct Layer: Sendable {
        package var queryKeyValueWeight: DenseMatrix
        package var queryKeyValueBias: [Float]
        package var attentionOutputWeight: DenseMatrix
        package var attentionOutputBias: [Float]
        package var attentionNormScale: [Float]
        package var attentionNormBias: [Float]
        package var intermediateWeight: DenseMatrix
        package var intermediateBias: [Float]
        package var outputWeight: DenseMatrix
        package var outputBias: [Float]
        package var outputNormScale: [Float]
        package var outputNormBias: [Float]
    }

    package let configuration: BertConfiguration
    /// The mapped weights file, kept open for ``wordEmbeddings``.
    package let file: SafetensorsFile
    /// `[vocabularySize, hidden]`, read in place from ``file``...
    package let wordEmbeddings: SafetensorsFile.TensorInfo
    /// ...unless the file leaves it misaligned: then it is copied once, here.
    package let wordEmbeddingsCopy: [Float]?
    /// `[maxPositions, hidden]`: position embedding plus the token-type-0 embedding.
    package let positionAndTypeEmbeddings: [Float]
    package let embeddingNormScale: [Float]
    package let embeddingNormBias: [Float]
    package let layers: [Layer]

    /// The dense layers' arithmetic (already narrowed to what this CPU supports).
    package let precision: DensePrecision

    /// Reads and checks every tensor the encoder needs from `file`, packing the dense layers'
    /// weights for `precision` (FP32 where the CPU lacks AVX-512 BF16).
    package init(file: SafetensorsFile, configuration: BertConfiguration, precision: DensePrecision = .float32) throws {
        let precision = precision.supported
        let attentionBF16 = precision.usesBFloat16ForAttention
        let feedForwardBF16 = precision.usesBFloat16ForFeedForward
        let hidden = configuration.hiddenSize
        let intermediate = configuration.intermediateSize
        let prefix = Self.prefix(in: file)

        self.configuration = configuration
        self.precision = precision
        self.file = file
        self.wordEmbeddings = try file.floatTensorInfo(
            prefix + "embeddings.word_embeddings.weight",
            shape: [configuration.vocabularySize, hidden]
        )
        self.wordEmbeddingsCopy =
            file.isAligned(self.wordEmbeddings) ? nil : file.withFloats(self.wordEmbeddings) { Array($0) }
        var positions = try file.floats(
            prefix + "embeddings.position_embeddings.weight",
            shape: [configuration.maxPositions, hidden]
        )
        let types = try file.floats(
            prefix + "embeddings.token_type_embeddings.weight",
            shape: [configuration.typeVocabularySize, hidden]
        )
        for position in 0..<configuration.maxPositions {
            for column in 0..<hidden {
                positions[position * hidden + column] += types[column]
            }
        }
        self.positionAndTypeEmbeddings = positions
        self.embeddingNormScale = try file.floats(prefix + "embeddings.LayerNorm.weight", shape: [hidden])
        self.embeddingNormBias = try file.floats(prefix + "embeddings.LayerNorm.bias", shape: [hidden])

        var layers: [Layer] = []
        for index in 0..<configuration.layerCount {
            let name = "\(prefix)encoder.layer.\(index)."
            let square = [hidden, hidden]
            var qkvWeight: [Float] = []
            var qkvBias: [Float] = []
            for part in ["query", "key", "value"] {
                qkvWeight += try file.floats(name + "attention.self.\(part).weight", shape: square)
                qkvBias += try file.floats(name + "attention.self.\(part).bias", shape: [hidden])
            }
            layers.append(
                Layer(
                    queryKeyValueWeight: DenseMatrix(
                        qkvWeight,
                        outputs: 3 * hidden,
                        inputs: hidden,
                        bfloat16: attentionBF16
                    ),
                    queryKeyValueBias: qkvBias,
                    attentionOutputWeight: DenseMatrix(
                        try file.floats(name + "attention.output.dense.weight", shape: square),
                        outputs: hidden,
                        inputs: hidden,
                        bfloat16: attentionBF16
                    ),
                    attentionOutputBias: try file.floats(name + "attention.output.dense.bias", shape: [hidden]),
                    attentionNormScale: try file.floats(name + "attention.output.LayerNorm.weight", shape: [hidden]),
                    attentionNormBias: try file.floats(name + "attention.output.LayerNorm.bias", shape: [hidden]),
                    intermediateWeight: DenseMatrix(
                        try file.floats(name + "intermediate.dense.weight", shape: [intermediate, hidden]),
                        outputs: intermediate,
                        inputs: hidden,
                        bfloat16: feedForwardBF16
                    ),
                    intermediateBias: try file.floats(name + "intermediate.dense.bias", shape: [intermediate]),
                    outputWeight: DenseMatrix(
                        try file.floats(name + "output.dense.weight", shape: [hidden, intermediate]),
                        outputs: hidden,
                        inputs: intermediate,
                        bfloat16: feedForwardBF16
                    ),
                    outputBias: try file.floats(name + "output.dense.bias", shape: [hidden]),
                    outputNormScale: try file.floats(name + "output.LayerNorm.weight", shape: [hidden]),
                    outputNormBias: try file.floats(name + "output.LayerNorm.bias", shape: [hidden])
                )
            )
        }
        self.layers = layers
    }

    /// Checkpoints saved from `BertForMaskedLM` and friends prefix every name with `bert.`.
    private static func prefix(in file: SafetensorsFile) -> String {
        file.tensors["embeddings.word_embeddings.weight"] == nil
            && file.tensors["bert.embeddings.word_embeddings.weight"] != nil ? "bert." : ""
    }
}
