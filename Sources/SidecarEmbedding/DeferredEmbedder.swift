import Foundation
import NIOPosix

/// The built-in embedder, loaded on first use so that start-up stays fast and the process
/// stays small until local embeddings are asked for.
///
/// Start-up only checks that the model's files are there; the first `embed` call loads them
/// on the thread pool, and concurrent first calls share that one load.
public final class DeferredEmbedder: Embedder {
    public let modelName: String
    public let dimensions: Int
    private let loader: Loader

    /// `nil` with the reason when the model's files are missing or unreadable.
    public static func prepare(
        directory: URL,
        servedAs name: String,
        threadPool: NIOThreadPool = .singleton
    )
        -> Result<DeferredEmbedder, any Error>
    {
        Result {
            let configuration = try BertConfiguration(contentsOf: directory.appendingPathComponent("config.json"))
            for file in ["vocab.txt", "model.safetensors"] {
                let path = directory.appendingPathComponent(file).path
                guard FileManager.default.isReadableFile(atPath: path) else {
                    throw EmbeddingError.modelFileMissing(path)
                }
            }
            return DeferredEmbedder(
                modelName: name,
                dimensions: configuration.hiddenSize,
                loader: Loader(directory: directory, name: name, threadPool: threadPool)
            )
        }
    }

    private init(modelName: String, dimensions: Int, loader: Loader) {
        self.modelName = modelName
        self.dimensions = dimensions
        self.loader = loader
    }

    public func embed(_ texts: [String]) async throws -> [[Float]] {
        try await self.loader.embedder().embed(texts)
    }

    public func tokenCount(_ text: String) async throws -> Int {
        try await self.loader.embedder().tokenCount(text)
    }

    /// Loads once; every caller awaits the same load.
    private actor Loader {
        let directory: URL
        let name: String
        let threadPool: NIOThreadPool
        private var loading: Task<LocalEmbedder, any Error>?

        init(directory: URL, name: String, threadPool: NIOThreadPool) {
            self.directory = directory
            self.name = name
            self.threadPool = threadPool
        }

        func embedder() async throws -> LocalEmbedder {
            if let loading { return try await loading.value }
            let directory = self.directory
            let name = self.name
            let threadPool = self.threadPool
            let task = Task {
                try await threadPool.runIfActive {
                    LocalEmbedder(model: try MiniLMEmbedder(modelDirectory: directory, modelName: name))
                }
            }
            self.loading = task
            return try await task.value
        }
    }
}
