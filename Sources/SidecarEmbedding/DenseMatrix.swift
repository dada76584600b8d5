import CSidecarKernels

/// The arithmetic of the encoder's dense layers (the query/key/value, attention-output and
/// feed-forward projections, which are about 95% of a forward pass's FLOPs).
package enum DensePrecision: Sendable, Equatable, CustomStringConvertible {
    /// FP32 throughout, with OpenBLAS `sgemm`: runs on any CPU.
    case float32
    /// Weights and activations rounded to bfloat16, products accumulated in FP32, with
    /// AVX-512 BF16 (`vdpbf16ps`): about 3x FP32's throughput on one Zen 4 core.
    case bfloat16
    /// bfloat16 for the feed-forward block only (two thirds of the FLOPs), FP32 elsewhere.
    case bfloat16FeedForward

    /// Whether this CPU runs the bfloat16 kernel (x86-64 with AVX-512 F, BW and BF16).
    package static let bfloat16IsSupported = sidecar_bf16_is_supported() != 0

    /// The fastest precision this CPU supports: ``bfloat16`` where available.
    package static var fastestSupported: DensePrecision { Self.bfloat16IsSupported ? .bfloat16 : .float32 }

    /// `self`, or ``float32`` on a CPU without the bfloat16 kernel.
    package var supported: DensePrecision { Self.bfloat16IsSupported ? self : .float32 }

    package var usesBFloat16ForAttention: Bool { self == .bfloat16 }
    package var usesBFloat16ForFeedForward: Bool { self != .float32 }

    package var description: String {
        switch self {
        case .float32: "fp32"
        case .bfloat16: "bf16"
        case .bfloat16FeedForward: "bf16-ffn"
        }
    }
}

/// One dense layer's weight matrix, PyTorch's `[outputs, inputs]`, stored in the form its
/// product uses: FP32 rows for OpenBLAS, or bfloat16 packed once for the AVX-512 BF16 kernel.
package struct DenseMatrix: Sendable {
    private enum Storage: Sendable {
        case float32([Float])
        case bfloat16([UInt16])
    }

    private let storage: Storage
    /// Output features: the product's columns.
    package let outputs: Int
    /// Input features: the product's depth.
    package let inputs: Int

    /// Whether products use the bfloat16 kernel.
    package var isBFloat16: Bool {
        if case .bfloat16 = self.storage { return true }
        return false
    }

    /// Wraps row-major `weights[outputs, inputs]`, packing them to bfloat16 when `bfloat16` is
    /// true, the CPU supports the kernel and the shape suits it (otherwise they stay FP32).
    package init(_ weights: [Float], outputs: Int, inputs: Int, bfloat16: Bool) {
        self.outputs = outputs
        self.inputs = inputs
        guard bfloat16, DensePrecision.bfloat16IsSupported, sidecar_bf16_accepts(outputs, inputs) != 0 else {
            self.storage = .float32(weights)
            return
        }
        let count = sidecar_bf16_packed_count(outputs, inputs)
        let packed = weights.withUnsafeBufferPointer { source in
            [UInt16](unsafeUninitializedCapacity: count) { target, initialized in
                if let source = source.baseAddress, let target = target.baseAddress {
                    sidecar_bf16_pack_weights(source, outputs, inputs, target)
                    initialized = count
                }
            }
        }
        self.storage = packed.count == count ? .bfloat16(packed) : .float32(weights)
    }

    /// `output[r, o] = input[r, i] · weights[o, i]ᵀ` for `rows` contiguous rows. `scratch` holds
    /// at least `rows * inputs` elements (the bfloat16 kernel's rounded copy of `input`).
    package func apply(
        _ input: UnsafePointer<Float>,
        rows: Int,
        into output: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<UInt16>
    ) {
        switch self.storage {
        case .float32(let weights):
            weights.withUnsafeBufferPointer { weights in
                guard let weights = weights.baseAddress else { return }
                BLASMatrix.linear(
                    input,
                    rows: rows,
                    depth: self.inputs,
                    weights,
                    columns: self.outputs,
                    into: output
                )
            }
        case .bfloat16(let packed):
            packed.withUnsafeBufferPointer { packed in
                guard let packed = packed.baseAddress else { return }
                sidecar_bf16_linear(input, rows, self.inputs, packed, self.outputs, output, scratch)
            }
        }
    }
}
