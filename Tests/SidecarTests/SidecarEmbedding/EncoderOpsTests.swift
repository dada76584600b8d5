import CSidecarKernels
import Foundation
import Testing

@testable import SidecarCore
@testable import SidecarEmbedding

/// The AVX-512 kernels of `EncoderOps.c` against the portable Swift code and plain references.
@Suite(.enabled(if: EncoderKernels.hasAVX512, "CPU lacks AVX-512 F"))
struct EncoderOpsTests {
    /// Deterministic values in `-range...range` (a linear congruential generator).
    static func values(_ count: Int, range: Float, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * range
        }
    }

    @Test func softmaxMatchesThePortableCode() {
        for width in [1, 5, 16, 17, 32, 45, 256] {
            let scores = Self.values(3 * width, range: 12, seed: UInt64(width))
            var vectorized = scores
            var portable = scores
            vectorized.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }
                EncoderKernels.softmaxRows(base, rows: 3, width: width, vectorized: true)
            }
            portable.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }
                EncoderKernels.softmaxRows(base, rows: 3, width: width, vectorized: false)
            }
            let worst = zip(vectorized, portable).map { abs($0 - $1) }.max() ?? 0
            #expect(worst < 1e-6, "width \(width): \(worst)")
        }
    }

    @Test(arguments: [true, false])
    func layerNormMatchesThePortableCode(withBias: Bool) {
        for width in [16, 48, 384] {
            let rows = 5
            let input = Self.values(rows * width, range: 3, seed: 1)
            let residual = Self.values(rows * width, range: 2, seed: 2)
            let bias = Self.values(width, range: 0.5, seed: 3)
            let scale = Self.values(width, range: 1.5, seed: 4)
            let shift = Self.values(width, range: 0.2, seed: 5)
            func run(_ vectorized: Bool) -> [Float] {
                var output = residual
                output.withUnsafeMutableBufferPointer { target in
                    guard let target = target.baseAddress else { return }
                    bias.withUnsafeBufferPointer { bias in
                        EncoderKernels.addAndNormalize(
                            input,
                            bias: withBias ? bias.baseAddress : nil,
                            residual: target,
                            scale: scale,
                            shift: shift,
                            rows: rows,
                            width: width,
                            epsilon: 1e-12,
                            vectorized: vectorized
                        )
                    }
                }
                return output
            }
            let worst = zip(run(true), run(false)).map { abs($0 - $1) }.max() ?? 0
            #expect(worst < 1e-5, "width \(width): \(worst)")
        }
    }

    @Test func biasAdditionMatchesThePortableCode() {
        let matrix = Self.values(3 * 48, range: 4, seed: 6)
        let bias = Self.values(48, range: 1, seed: 7)
        func run(_ vectorized: Bool) -> [Float] {
            var output = matrix
            output.withUnsafeMutableBufferPointer { target in
                guard let target = target.baseAddress else { return }
                EncoderKernels.addBias(target, bias: bias, rows: 3, width: 48, vectorized: vectorized)
            }
            return output
        }
        #expect(run(true) == run(false))
    }

    /// `softmax(scale * q kᵀ) v` per head, in `Double`.
    static func referenceAttention(_ qkv: [Float], length: Int, heads: Int, headSize: Int, scale: Float) -> [Float] {
        let hidden = heads * headSize
        var context = [Float](repeating: 0, count: length * hidden)
        for head in 0..<heads {
            for query in 0..<length {
                let queryBase: Int = query * 3 * hidden + head * headSize
                var scores: [Double] = []
                for key in 0..<length {
                    let keyBase: Int = key * 3 * hidden + hidden + head * headSize
                    var sum: Double = 0
                    for depth in 0..<headSize {
                        let q: Double = Double(qkv[queryBase + depth])
                        let k: Double = Double(qkv[keyBase + depth])
                        sum += q * k
                    }
                    scores.append(sum * Double(scale))
                }
                let top: Double = scores.max() ?? 0
                let weights: [Double] = scores.map { Foundation.exp($0 - top) }
                let total: Double = weights.reduce(0, +)
                for depth in 0..<headSize {
                    var value: Double = 0
                    for key in 0..<length {
                        let valueBase: Int = key * 3 * hidden + 2 * hidden + head * headSize
                        value += weights[key] * Double(qkv[valueBase + depth])
                    }
                    context[query * hidden + head * headSize + depth] = Float(value / total)
                }
            }
        }
        return context
    }

    @Test func attentionMatchesAReferenceForEveryTileShape() {
        let heads = 3
        let headSize = 32
        let hidden = heads * headSize
        let scale = 1 / Float(headSize).squareRoot()
        for length in [1, 7, 8, 9, 16, 17, 32, 45] {
            let qkv = Self.values(length * 3 * hidden, range: 2, seed: UInt64(length))
            var context = [Float](repeating: .nan, count: length * hidden)
            var scratch = [Float](repeating: 0, count: sidecar_attention_scratch_count(length, headSize))
            qkv.withUnsafeBufferPointer { qkv in
                context.withUnsafeMutableBufferPointer { context in
                    scratch.withUnsafeMutableBufferPointer { scratch in
                        guard let qkv = qkv.baseAddress, let output = context.baseAddress,
                            let scratch = scratch.baseAddress
                        else { return }
                        sidecar_attention(qkv, length, heads, headSize, scale, output, hidden, scratch)
                    }
                }
            }
            let expected = Self.referenceAttention(qkv, length: length, heads: heads, headSize: headSize, scale: scale)
            let worst = zip(context, expected).map { abs($0 - $1) }.max() ?? .nan
            #expect(worst < 1e-5, "length \(length): \(worst)")
        }
    }
}
