import Foundation

/// A read-only view of a `.safetensors` file, memory-mapped rather than read.
///
/// The format is an 8-byte little-endian header length, a JSON header mapping tensor names to
/// `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to the end of the
/// header), then the raw little-endian tensor bytes. Only `F32` tensors can be read as floats;
/// other dtypes are listed but reading them throws ``EmbeddingError/unsupportedTensorType``.
package struct SafetensorsFile: Sendable {
    /// One tensor's entry in the header.
    package struct TensorInfo: Sendable, Equatable {
        package var dtype: String
        package var shape: [Int]
        /// Byte range within the file (already offset by the header).
        package var byteRange: Range<Int>
    }

    /// The mapped file; pages are loaded lazily by the kernel and shared with the page cache.
    private let data: Data
    /// Every tensor in the header, by name (`__metadata__` excluded).
    package let tensors: [String: TensorInfo]
    /// The `__metadata__` string map, if any.
    package let metadata: [String: String]

    /// Maps and parses the file at `url`.
    package init(contentsOf url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw EmbeddingError.modelFileMissing("\(url.path): \(error)")
        }
        try self.init(data: data)
    }

    /// Parses safetensors bytes already in memory (or mapped).
    package init(data: Data) throws {
        let data = data.startIndex == 0 ? data : Data(data)
        guard data.count >= 8 else {
            throw EmbeddingError.invalidSafetensorsHeader("file is \(data.count) bytes, shorter than the header length")
        }
        let headerLength = data.withUnsafeBytes { raw in
            UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        }
        guard headerLength <= UInt64(data.count - 8) else {
            throw EmbeddingError.invalidSafetensorsHeader("header length \(headerLength) exceeds the file")
        }
        let dataStart = 8 + Int(headerLength)
        let header = data.subdata(in: 8..<dataStart)
        guard let json = try? JSONSerialization.jsonObject(with: header), let entries = json as? [String: Any] else {
            throw EmbeddingError.invalidSafetensorsHeader("header is not a JSON object")
        }
        var tensors: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in entries {
            if name == "__metadata__" {
                metadata = value as? [String: String] ?? [:]
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                let shape = (entry["shape"] as? [NSNumber])?.map(\.intValue),
                let offsets = (entry["data_offsets"] as? [NSNumber])?.map(\.intValue), offsets.count == 2
            else {
                throw EmbeddingError.invalidSafetensorsHeader("entry \(name) lacks dtype, shape or data_offsets")
            }
            let begin = dataStart + offsets[0]
            let end = dataStart + offsets[1]
            guard offsets[0] >= 0, begin <= end, end <= data.count, shape.allSatisfy({ $0 >= 0 }) else {
                throw EmbeddingError.invalidSafetensorsHeader("entry \(name) has offsets outside the file")
            }
            tensors[name] = TensorInfo(dtype: dtype, shape: shape, byteRange: begin..<end)
        }
        self.data = data
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The info of tensor `name`, checked to be `F32` with the given shape.
    package func floatTensorInfo(_ name: String, shape expected: [Int]) throws -> TensorInfo {
        guard let info = self.tensors[name] else {
            throw EmbeddingError.tensorMissing(name)
        }
        guard info.dtype == "F32" else {
            throw EmbeddingError.unsupportedTensorType("\(name) is \(info.dtype); only F32 is supported")
        }
        guard info.shape == expected else {
            throw EmbeddingError.tensorShapeMismatch("\(name) has shape \(info.shape), expected \(expected)")
        }
        let elements = expected.reduce(1, *)
        guard info.byteRange.count == elements * MemoryLayout<Float>.size else {
            throw EmbeddingError.invalidSafetensorsHeader(
                "\(name) spans \(info.byteRange.count) bytes for \(elements) floats"
            )
        }
        return info
    }

    /// Copies tensor `name` (an `F32` tensor of shape `shape`) into a row-major array.
    package func floats(_ name: String, shape: [Int]) throws -> [Float] {
        let info = try self.floatTensorInfo(name, shape: shape)
        return self.withFloats(info) { Array($0) }
    }

    /// Whether `info`'s floats can be read in place (4-byte aligned), without a copy.
    package func isAligned(_ info: TensorInfo) -> Bool {
        self.data.withUnsafeBytes { raw in
            raw.baseAddress.map { Int(bitPattern: $0 + info.byteRange.lowerBound) % MemoryLayout<Float>.alignment == 0 }
                ?? false
        }
    }

    /// Calls `body` with the floats of `info`: in place when aligned, else from a copy.
    package func withFloats<Result>(
        _ info: TensorInfo,
        _ body: (UnsafeBufferPointer<Float>) throws -> Result
    ) rethrows
        -> Result
    {
        try self.data.withUnsafeBytes { raw in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[info.byteRange])
            let count = bytes.count / MemoryLayout<Float>.size
            if let base = bytes.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
                return try body(UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: count))
            }
            var copy = [Float](repeating: 0, count: count)
            _ = copy.withUnsafeMutableBytes { bytes.copyBytes(to: $0) }
            return try copy.withUnsafeBufferPointer(body)
        }
    }
}
