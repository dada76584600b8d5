import CSidecarKernels
import Foundation

/// The element-wise and row-wise steps of the BERT forward pass, on contiguous row-major
/// `Float` buffers. Widths must be multiples of 8 (checked when the configuration is loaded).
package enum EncoderKernels {
    package typealias Vector = SIMD8<Float>

    /// Whether this CPU runs the AVX-512 F kernels of `CSidecarKernels` (attention, softmax,
    /// layer norm); the portable Swift code here is the fallback.
    package static let hasAVX512 = sidecar_avx512_is_supported() != 0

    @inline(__always)
    package static func load(_ pointer: UnsafePointer<Float>) -> Vector {
        UnsafeRawPointer(pointer).loadUnaligned(as: Vector.self)
    }

    @inline(__always)
    package static func store(_ value: Vector, _ pointer: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: Vector.self)
    }

    /// `matrix[r, c] += bias[c]` for each of `rows` rows of `width` columns; in AVX-512 where
    /// `vectorized` and the width is a multiple of 16.
    package static func addBias(
        _ matrix: UnsafeMutablePointer<Float>,
        bias: UnsafePointer<Float>,
        rows: Int,
        width: Int,
        vectorized: Bool = hasAVX512
    ) {
        if vectorized, width % 16 == 0 {
            sidecar_add_bias(matrix, bias, rows, width)
            return
        }
        for row in 0..<rows {
            let line = matrix + row * width
            for column in stride(from: 0, to: width, by: Vector.scalarCount) {
                store(load(line + column) + load(bias + column), line + column)
            }
        }
    }

    /// `matrix = gelu(matrix + bias)`, GELU in its exact (erf) form.
    package static func addBiasGELU(
        _ matrix: UnsafeMutablePointer<Float>,
        bias: UnsafePointer<Float>,
        rows: Int,
        width: Int
    ) {
        for row in 0..<rows {
            let line = matrix + row * width
            // A plain loop over scalars: LLVM vectorises it, min/max included.
            for column in 0..<width {
                let x = line[column] + bias[column]
                line[column] = 0.5 * x * (1 + erf(x * 0.707_106_77))
            }
        }
    }

    /// `residual = layerNorm(input + bias + residual) * scale + shift`, row by row, the
    /// "Add & Norm" step closing each BERT sub-layer. `bias` may be nil. In AVX-512 where
    /// `vectorized` and the width is a multiple of 16.
    package static func addAndNormalize(
        _ input: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?,
        residual: UnsafeMutablePointer<Float>,
        scale: UnsafePointer<Float>,
        shift: UnsafePointer<Float>,
        rows: Int,
        width: Int,
        epsilon: Float,
        vectorized: Bool = hasAVX512
    ) {
        if vectorized, width % 16 == 0 {
            sidecar_add_layer_norm(input, bias, residual, scale, shift, rows, width, epsilon)
            return
        }
        let step = Vector.scalarCount
        for row in 0..<rows {
            let inputLine = input + row * width
            let line = residual + row * width
            var sum = Vector()
            for column in stride(from: 0, to: width, by: step) {
                var value = load(inputLine + column) + load(line + column)
                if let bias {
                    value += load(bias + column)
                }
                store(value, line + column)
                sum += value
            }
            let mean = sum.sum() / Float(width)
            let meanVector = Vector(repeating: mean)
            var squares = Vector()
            for column in stride(from: 0, to: width, by: step) {
                let centred = load(line + column) - meanVector
                squares += centred * centred
            }
            let inverseDeviation = Vector(repeating: 1 / (squares.sum() / Float(width) + epsilon).squareRoot())
            for column in stride(from: 0, to: width, by: step) {
                let normalized = (load(line + column) - meanVector) * inverseDeviation
                store(normalized * load(scale + column) + load(shift + column), line + column)
            }
        }
    }

    /// Softmax of each of `rows` rows of `width` scores, in place; in AVX-512 where `vectorized`.
    package static func softmaxRows(
        _ scores: UnsafeMutablePointer<Float>,
        rows: Int,
        width: Int,
        vectorized: Bool = hasAVX512
    ) {
        if vectorized {
            sidecar_softmax_rows(scores, rows, width)
            return
        }
        for row in 0..<rows {
            let line = scores + row * width
            var maximum = -Float.infinity
            for column in 0..<width {
                maximum = max(maximum, line[column])
            }
            var total: Float = 0
            for column in 0..<width {
                let value = Foundation.exp(line[column] - maximum)
                line[column] = value
                total += value
            }
            let inverse = 1 / total
            for column in 0..<width {
                line[column] *= inverse
            }
        }
    }

    /// The error function: a [13/8] rational approximation on [-4, 4] (the one Eigen and XLA
    /// use for `float`), within 1e-6 of libm's `erff`; `erf` is ±1 in `Float` beyond.
    @inline(__always)
    package static func erf(_ input: Float) -> Float {
        let x = Swift.min(Swift.max(input, -4), 4)
        let x2 = x * x
        var p = x2 * -2.726_142_3e-10 + 2.770_681_4e-08
        p = x2 * p - 2.101_024e-06
        p = x2 * p - 5.692_506_4e-05
        p = x2 * p - 7.349_906_3e-04
        p = x2 * p - 2.954_600_0e-03
        p = x2 * p - 1.609_603_3e-02
        p = x * p
        var q = x2 * -1.456_607_2e-05 - 2.133_740_6e-04
        q = x2 * q - 1.682_827e-03
        q = x2 * q - 7.373_329_2e-03
        q = x2 * q - 1.426_474e-02
        return p / q
    }
}
