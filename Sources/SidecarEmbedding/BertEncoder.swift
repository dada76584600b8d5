import CSidecarKernels
import Foundation

/// The BERT encoder forward pass with mean pooling and L2 normalisation.
///
/// A batch is packed row-wise without padding: the dense layers run once over every real token
/// of every sequence, and attention runs per sequence over that sequence's own keys only. This
/// is exactly what padding plus an attention mask computes, without the padded rows' work.
package struct BertEncoder: Sendable {
    package let weights: BertWeights

    package var configuration: BertConfiguration { self.weights.configuration }

    /// Returns one unit-length, mean-pooled vector per sequence of token ids.
    ///
    /// Every sequence must be non-empty, no longer than `maxPositions`, with ids below the
    /// vocabulary size.
    package func embed(_ sequences: [[Int32]], workspace: EncoderWorkspace) -> [[Float]] {
        let rows = sequences.reduce(0) { $0 + $1.count }
        let longest = sequences.map(\.count).max() ?? 0
        guard rows > 0 else {
            return sequences.map { _ in [Float](repeating: 0, count: self.configuration.hiddenSize) }
        }
        let attentionScratch = sidecar_attention_scratch_count(longest, self.configuration.headSize)
        workspace.reserve(rows: rows, longest: longest, scores: attentionScratch)
        self.embedTokens(sequences, rows: rows, workspace: workspace)
        for layer in self.weights.layers {
            self.attention(layer, sequences: sequences, rows: rows, workspace: workspace)
            self.feedForward(layer, rows: rows, workspace: workspace)
        }
        return self.pool(sequences, workspace: workspace)
    }

    /// `hidden = layerNorm(word[id] + position[p] + tokenType[0])`.
    private func embedTokens(_ sequences: [[Int32]], rows: Int, workspace: EncoderWorkspace) {
        let hidden = self.configuration.hiddenSize
        let copy = self.weights.wordEmbeddingsCopy
        let fill = { (words: UnsafeBufferPointer<Float>) in
            self.weights.positionAndTypeEmbeddings.withUnsafeBufferPointer { positions in
                guard let wordBase = words.baseAddress, let positionBase = positions.baseAddress else { return }
                var row = 0
                for sequence in sequences {
                    for (position, id) in sequence.enumerated() {
                        let target = row * hidden
                        (workspace.projection + target).update(from: wordBase + Int(id) * hidden, count: hidden)
                        (workspace.hidden + target).update(from: positionBase + position * hidden, count: hidden)
                        row += 1
                    }
                }
            }
        }
        if let copy {
            copy.withUnsafeBufferPointer(fill)
        } else {
            self.weights.file.withFloats(self.weights.wordEmbeddings, fill)
        }
        self.weights.embeddingNormScale.withUnsafeBufferPointer { scale in
            self.weights.embeddingNormBias.withUnsafeBufferPointer { shift in
                guard let scale = scale.baseAddress, let shift = shift.baseAddress else { return }
                EncoderKernels.addAndNormalize(
                    workspace.projection,
                    bias: nil,
                    residual: workspace.hidden,
                    scale: scale,
                    shift: shift,
                    rows: rows,
                    width: hidden,
                    epsilon: self.configuration.layerNormEpsilon
                )
            }
        }
    }

    /// Self-attention over each sequence, the output projection, then Add & Norm.
    private func attention(
        _ layer: BertWeights.Layer,
        sequences: [[Int32]],
        rows: Int,
        workspace: EncoderWorkspace
    ) {
        let configuration = self.configuration
        let hidden = configuration.hiddenSize
        let headSize = configuration.headSize
        let qkvWidth = 3 * hidden
        let scale = 1 / Float(headSize).squareRoot()
        let qkv = workspace.queryKeyValue
        layer.queryKeyValueWeight.apply(workspace.hidden, rows: rows, into: qkv, scratch: workspace.roundedInput)
        layer.queryKeyValueBias.withUnsafeBufferPointer { bias in
            guard let bias = bias.baseAddress else { return }
            EncoderKernels.addBias(qkv, bias: bias, rows: rows, width: qkvWidth)
        }
        // With AVX-512, one FP32 kernel per sequence does every head's scores, softmax and
        // context in registers; otherwise two OpenBLAS products and a softmax per head.
        let useKernel = EncoderKernels.hasAVX512 && headSize % 16 == 0
        var start = 0
        for sequence in sequences {
            let length = sequence.count
            if useKernel {
                sidecar_attention(
                    qkv + start * qkvWidth,
                    length,
                    configuration.headCount,
                    headSize,
                    scale,
                    workspace.context + start * hidden,
                    hidden,
                    workspace.scores
                )
                start += length
                continue
            }
            for head in 0..<configuration.headCount {
                let queries = qkv + start * qkvWidth + head * headSize
                let keys = queries + hidden
                let values = keys + hidden
                BLASMatrix.multiplyTransposed(
                    queries,
                    rows: length,
                    depth: headSize,
                    inputStride: qkvWidth,
                    keys,
                    columns: length,
                    weightStride: qkvWidth,
                    into: workspace.scores,
                    outputStride: length,
                    alpha: scale
                )
                EncoderKernels.softmaxRows(workspace.scores, rows: length, width: length)
                BLASMatrix.multiply(
                    workspace.scores,
                    rows: length,
                    depth: length,
                    inputStride: length,
                    values,
                    columns: headSize,
                    rightStride: qkvWidth,
                    into: workspace.context + start * hidden + head * headSize,
                    outputStride: hidden
                )
            }
            start += length
        }
        self.dense(
            workspace.context,
            rows: rows,
            weight: layer.attentionOutputWeight,
            bias: layer.attentionOutputBias,
            scale: layer.attentionNormScale,
            shift: layer.attentionNormBias,
            workspace: workspace
        )
    }

    /// The feed-forward block: dense + GELU, dense, then Add & Norm.
    private func feedForward(_ layer: BertWeights.Layer, rows: Int, workspace: EncoderWorkspace) {
        let intermediate = self.configuration.intermediateSize
        layer.intermediateWeight.apply(
            workspace.hidden,
            rows: rows,
            into: workspace.intermediate,
            scratch: workspace.roundedInput
        )
        layer.intermediateBias.withUnsafeBufferPointer { bias in
            guard let bias = bias.baseAddress else { return }
            if layer.intermediateWeight.isBFloat16 {
                // AVX-512 is there (the bfloat16 kernel needs it): 16 lanes instead of SSE's 4.
                sidecar_bias_gelu(workspace.intermediate, bias, rows, intermediate)
            } else {
                EncoderKernels.addBiasGELU(workspace.intermediate, bias: bias, rows: rows, width: intermediate)
            }
        }
        self.dense(
            workspace.intermediate,
            rows: rows,
            weight: layer.outputWeight,
            bias: layer.outputBias,
            scale: layer.outputNormScale,
            shift: layer.outputNormBias,
            workspace: workspace
        )
    }

    /// `hidden = layerNorm(input · weightᵀ + bias + hidden)`.
    private func dense(
        _ input: UnsafeMutablePointer<Float>,
        rows: Int,
        weight: DenseMatrix,
        bias: [Float],
        scale: [Float],
        shift: [Float],
        workspace: EncoderWorkspace
    ) {
        let hidden = self.configuration.hiddenSize
        weight.apply(input, rows: rows, into: workspace.projection, scratch: workspace.roundedInput)
        bias.withUnsafeBufferPointer { bias in
            scale.withUnsafeBufferPointer { scale in
                shift.withUnsafeBufferPointer { shift in
                    guard let bias = bias.baseAddress, let scale = scale.baseAddress, let shift = shift.baseAddress
                    else { return }
                    EncoderKernels.addAndNormalize(
                        workspace.projection,
                        bias: bias,
                        residual: workspace.hidden,
                        scale: scale,
                        shift: shift,
                        rows: rows,
                        width: hidden,
                        epsilon: self.configuration.layerNormEpsilon
                    )
                }
            }
        }
    }

    /// Mean over each sequence's rows, then division by the L2 norm (floored at 1e-12).
    private func pool(_ sequences: [[Int32]], workspace: EncoderWorkspace) -> [[Float]] {
        let hidden = self.configuration.hiddenSize
        var start = 0
        return sequences.map { sequence in
            var vector = [Float](repeating: 0, count: hidden)
            for row in start..<start + sequence.count {
                let line = workspace.hidden + row * hidden
                for column in 0..<hidden {
                    vector[column] += line[column]
                }
            }
            start += sequence.count
            let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot() / Float(sequence.count)
            let inverse = 1 / (max(norm, 1e-12) * Float(sequence.count))
            return vector.map { $0 * inverse }
        }
    }
}
