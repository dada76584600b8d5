import Foundation
import Testing

@testable import SidecarCore
@testable import SidecarEmbedding

struct SafetensorsFileTests {
    /// Writes a safetensors file: 8-byte little-endian header length, JSON header, data.
    static func makeFile(header: String, payload: [UInt8]) throws -> URL {
        var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) }
        bytes += Array(header.utf8)
        bytes += payload
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tensors-\(UUID()).safetensors")
        try Data(bytes).write(to: url)
        return url
    }

    static func floatBytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } }
    }

    static let header = """
        {"__metadata__":{"format":"pt"},\
        "ids":{"dtype":"I64","shape":[2],"data_offsets":[24,40]},\
        "matrix":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}
        """

    @Test func parsesHeaderAndReadsFloatTensors() throws {
        let url = try Self.makeFile(
            header: Self.header,
            payload: Self.floatBytes([1, 2, 3, 4, 5, -6.5]) + [UInt8](repeating: 0, count: 16)
        )
        defer { try? FileManager.default.removeItem(at: url) }
        let file = try SafetensorsFile(contentsOf: url)
        #expect(file.metadata == ["format": "pt"])
        #expect(Set(file.tensors.keys) == ["ids", "matrix"])
        #expect(file.tensors["ids"]?.dtype == "I64")
        #expect(file.tensors["matrix"]?.shape == [2, 3])
        #expect(try file.floats("matrix", shape: [2, 3]) == [1, 2, 3, 4, 5, -6.5])
    }

    @Test func readsFloatsFromAMisalignedDataSectionByCopying() throws {
        // A header of 4k + 1 bytes leaves every tensor 1 byte off a Float boundary.
        var header = #"{"v":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}"#
        while (8 + header.utf8.count) % 4 != 1 {
            header += " "
        }
        let url = try Self.makeFile(header: header, payload: Self.floatBytes([0.5, -1, 3]))
        defer { try? FileManager.default.removeItem(at: url) }
        let file = try SafetensorsFile(contentsOf: url)
        let info = try file.floatTensorInfo("v", shape: [3])
        #expect(!file.isAligned(info))
        #expect(try file.floats("v", shape: [3]) == [0.5, -1, 3])
    }

    @Test func rejectsNonFloatTensorsWrongShapesAndMissingNames() throws {
        let url = try Self.makeFile(header: Self.header, payload: [UInt8](repeating: 0, count: 40))
        defer { try? FileManager.default.removeItem(at: url) }
        let file = try SafetensorsFile(contentsOf: url)
        #expect(throws: EmbeddingError.unsupportedTensorType) { try file.floats("ids", shape: [2]) }
        #expect(throws: EmbeddingError.tensorShapeMismatch) { try file.floats("matrix", shape: [3, 2]) }
        #expect(throws: EmbeddingError.tensorMissing) { try file.floats("absent", shape: [1]) }
    }

    @Test func rejectsTruncatedFilesAndMalformedHeaders() throws {
        #expect(throws: EmbeddingError.invalidSafetensorsHeader) { try SafetensorsFile(data: Data([1, 2, 3])) }
        var tooLong = withUnsafeBytes(of: UInt64(1000).littleEndian) { Array($0) }
        tooLong += Array("{}".utf8)
        #expect(throws: EmbeddingError.invalidSafetensorsHeader) { try SafetensorsFile(data: Data(tooLong)) }
        let notJSON = try Self.makeFile(header: "not json", payload: [])
        defer { try? FileManager.default.removeItem(at: notJSON) }
        #expect(throws: EmbeddingError.invalidSafetensorsHeader) { try SafetensorsFile(contentsOf: notJSON) }
        let outside = try Self.makeFile(
            header: #"{"m":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
            payload: Self.floatBytes([1, 2])
        )
        defer { try? FileManager.default.removeItem(at: outside) }
        #expect(throws: EmbeddingError.invalidSafetensorsHeader) { try SafetensorsFile(contentsOf: outside) }
    }

    @Test func reportsMissingFileAsModelFileMissing() {
        let url = URL(fileURLWithPath: "/nonexistent/model.safetensors")
        #expect(throws: EmbeddingError.modelFileMissing) { try SafetensorsFile(contentsOf: url) }
    }
}
