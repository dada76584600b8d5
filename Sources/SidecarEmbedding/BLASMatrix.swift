import COpenBLAS

/// Thin wrappers over OpenBLAS's single-precision GEMM for row-major matrices.
package enum BLASMatrix {
    /// Limits OpenBLAS to the calling thread: the embedder is called from a thread pool and
    /// must not fan each call out over every core.
    package static func useCallerThreadOnly() {
        openblas_set_num_threads(1)
    }

    /// `output[m, n] = alpha * input[m, k] · weight[n, k]ᵀ` (+ `beta * output`), with leading
    /// dimensions given for each matrix.
    @inline(__always)
    package static func multiplyTransposed(
        _ input: UnsafePointer<Float>,
        rows: Int,
        depth: Int,
        inputStride: Int,
        _ weight: UnsafePointer<Float>,
        columns: Int,
        weightStride: Int,
        into output: UnsafeMutablePointer<Float>,
        outputStride: Int,
        alpha: Float = 1,
        beta: Float = 0
    ) {
        cblas_sgemm(
            CblasRowMajor,
            CblasNoTrans,
            CblasTrans,
            blasint(rows),
            blasint(columns),
            blasint(depth),
            alpha,
            input,
            blasint(inputStride),
            weight,
            blasint(weightStride),
            beta,
            output,
            blasint(outputStride)
        )
    }

    /// A dense layer's product, `output[m, n] = input[m, k] · weight[n, k]ᵀ`, contiguous rows.
    ///
    /// For a few rows (one short sentence), OpenBLAS's packing of the whole weight matrix costs
    /// more than the arithmetic; slicing the output into 32-column blocks lets it take its
    /// small-matrix path, which does not pack (measured on one Zen 4 core: 8 rows 6.6 -> 3.2 ms,
    /// 28 rows 11.1 -> 9.2 ms per forward pass; from 40 rows on, one call is as fast or faster).
    package static func linear(
        _ input: UnsafePointer<Float>,
        rows: Int,
        depth: Int,
        _ weight: UnsafePointer<Float>,
        columns: Int,
        into output: UnsafeMutablePointer<Float>
    ) {
        let block = rows <= Self.smallMatrixRows ? Self.smallMatrixColumns : columns
        var column = 0
        while column < columns {
            let width = min(block, columns - column)
            Self.multiplyTransposed(
                input,
                rows: rows,
                depth: depth,
                inputStride: depth,
                weight + column * depth,
                columns: width,
                weightStride: depth,
                into: output + column,
                outputStride: columns
            )
            column += width
        }
    }

    private static let smallMatrixRows = 32
    private static let smallMatrixColumns = 32

    /// `output[m, n] = input[m, k] · right[k, n]`, with leading dimensions given.
    @inline(__always)
    package static func multiply(
        _ input: UnsafePointer<Float>,
        rows: Int,
        depth: Int,
        inputStride: Int,
        _ right: UnsafePointer<Float>,
        columns: Int,
        rightStride: Int,
        into output: UnsafeMutablePointer<Float>,
        outputStride: Int
    ) {
        cblas_sgemm(
            CblasRowMajor,
            CblasNoTrans,
            CblasNoTrans,
            blasint(rows),
            blasint(columns),
            blasint(depth),
            1,
            input,
            blasint(inputStride),
            right,
            blasint(rightStride),
            0,
            output,
            blasint(outputStride)
        )
    }
}
