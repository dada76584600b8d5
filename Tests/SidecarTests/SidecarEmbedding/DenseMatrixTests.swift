import Testing

@testable import SidecarCore
@testable import SidecarEmbedding

struct DenseMatrixTests {
    /// Deterministic values in [-1, 1) (a linear congruential generator), so failures reproduce.
    private static func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) / Float(1 << 23) - 1
        }
    }

    /// `input · weightsᵀ` in Double, the reference for both paths.
    private static func product(
        _ input: [Float],
        _ weights: [Float],
        rows: Int,
        outputs: Int,
        inputs: Int
    ) -> [Double] {
        var result = [Double](repeating: 0, count: rows * outputs)
        for row in 0..<rows {
            for column in 0..<outputs {
                var sum = 0.0
                for index in 0..<inputs {
                    sum += Double(input[row * inputs + index]) * Double(weights[column * inputs + index])
                }
                result[row * outputs + column] = sum
            }
        }
        return result
    }

    /// Every row count from 1 to 13 (full and partial 6-row tiles) and 80 outputs (a 64-column
    /// panel plus a 16-column tail), against a Double reference: FP32 to 1e-5, bfloat16 to 1e-2
    /// relative RMS error (two 8-bit-mantissa roundings per product).
    @Test func float32ProductMatchesDoubleReference() throws {
        try self.productMatchesDoubleReference(bfloat16: false)
    }

    /// Skipped (not failed) on CPUs without AVX-512 BF16, where the sidecar never uses BF16.
    @Test(.enabled(if: DensePrecision.bfloat16IsSupported, "CPU lacks AVX-512 BF16"))
    func bfloat16ProductMatchesDoubleReference() throws {
        try self.productMatchesDoubleReference(bfloat16: true)
    }

    func productMatchesDoubleReference(bfloat16: Bool) throws {
        let outputs = 80
        let inputs = 96
        let weights = Self.values(outputs * inputs, seed: 1)
        let matrix = DenseMatrix(weights, outputs: outputs, inputs: inputs, bfloat16: bfloat16)
        #expect(matrix.isBFloat16 == bfloat16)
        for rows in 1...13 {
            let input = Self.values(rows * inputs, seed: UInt64(rows) + 2)
            var output = [Float](repeating: .nan, count: rows * outputs)
            var scratch = [UInt16](repeating: 0, count: rows * inputs)
            input.withUnsafeBufferPointer { input in
                output.withUnsafeMutableBufferPointer { output in
                    scratch.withUnsafeMutableBufferPointer { scratch in
                        guard let input = input.baseAddress, let output = output.baseAddress,
                            let scratch = scratch.baseAddress
                        else { return }
                        matrix.apply(input, rows: rows, into: output, scratch: scratch)
                    }
                }
            }
            let expected = Self.product(input, weights, rows: rows, outputs: outputs, inputs: inputs)
            let error = zip(output, expected).reduce(0.0) { $0 + (Double($1.0) - $1.1) * (Double($1.0) - $1.1) }
            let scale = expected.reduce(0.0) { $0 + $1 * $1 }
            let relative = (error / scale).squareRoot()
            #expect(relative < (bfloat16 ? 1e-2 : 1e-5), "\(rows) rows: relative error \(relative)")
        }
    }

    @Test func unsupportedShapesStayFloat32() {
        let weights = [Float](repeating: 1, count: 24 * 8)
        #expect(!DenseMatrix(weights, outputs: 24, inputs: 8, bfloat16: true).isBFloat16)
        #expect(!DenseMatrix(weights, outputs: 16, inputs: 12, bfloat16: false).isBFloat16)
    }
}
