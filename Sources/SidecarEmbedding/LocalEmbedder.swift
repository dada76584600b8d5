import Foundation
import NIOCore
import NIOPosix

/// The built-in MiniLM embedder as an async ``Embedder``: the matrix work runs on a NIO thread
/// pool, never on the cooperative pool that serves requests.
public struct LocalEmbedder: Embedder {
    package let model: MiniLMEmbedder
    package let threadPool: NIOThreadPool
    /// Batches are split across this many pool threads (each core runs one BLAS/BF16 stream).
    package let parallelism: Int

    public var modelName: String { self.model.modelName }
    public var dimensions: Int { self.model.dimensions }

    public init(
        model: MiniLMEmbedder,
        threadPool: NIOThreadPool = .singleton,
        parallelism: Int = System.coreCount
    ) {
        self.model = model
        self.threadPool = threadPool
        self.parallelism = max(1, parallelism)
    }

    /// Loads the model from `directory`; `nil` with the reason when the files are missing or bad.
    public static func load(directory: URL, servedAs name: String) -> Result<LocalEmbedder, any Error> {
        Result { LocalEmbedder(model: try MiniLMEmbedder(modelDirectory: directory, modelName: name)) }
    }

    /// Embeds `texts`; a batch of 8 or more is split into contiguous parts of similar total
    /// length, one per core, computed in parallel.
    public func embed(_ texts: [String]) async throws -> [[Float]] {
        let model = self.model
        let parts = Self.split(texts, into: texts.count >= 8 ? self.parallelism : 1)
        if parts.count == 1 {
            return try await self.threadPool.runIfActive { try model.embedBlocking(texts) }
        }
        return try await withThrowingTaskGroup(of: (Int, [[Float]]).self) { group in
            for (index, part) in parts.enumerated() {
                group.addTask {
                    (index, try await self.threadPool.runIfActive { try model.embedBlocking(Array(texts[part])) })
                }
            }
            var results = [[[Float]]](repeating: [], count: parts.count)
            for try await (index, vectors) in group {
                results[index] = vectors
            }
            return results.flatMap { $0 }
        }
    }

    /// Contiguous ranges of `texts` with similar total UTF-8 length (a proxy for tokens).
    package static func split(_ texts: [String], into count: Int) -> [Range<Int>] {
        guard count > 1, texts.count > 1 else { return [0..<texts.count] }
        let lengths = texts.map { $0.utf8.count + 8 }
        let total = lengths.reduce(0, +)
        var ranges: [Range<Int>] = []
        var start = 0
        var accumulated = 0
        for (index, length) in lengths.enumerated() {
            accumulated += length
            let boundary = total * (ranges.count + 1) / count
            if accumulated >= boundary && ranges.count < count - 1 && index + 1 < texts.count {
                ranges.append(start..<(index + 1))
                start = index + 1
            }
        }
        ranges.append(start..<texts.count)
        return ranges
    }

    /// Token counts per text (with `[CLS]`/`[SEP]`), for `usage`.
    public func tokenCount(_ text: String) -> Int {
        self.model.tokenize(text).count
    }
}
