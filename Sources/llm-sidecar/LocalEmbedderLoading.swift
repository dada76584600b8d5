import ArgumentParser
import Foundation
import Logging
import SidecarCore
import SidecarEmbedding

/// Loads the built-in embedder named by `[embeddings]`; the sidecar runs without it.
enum LocalEmbedderLoading {
    /// For `serve`: checks the files now and loads the weights on first use.
    static func load(_ configuration: EmbeddingConfiguration, logger: Logger) -> (any Embedder)? {
        guard !configuration.localModel.isEmpty else { return nil }
        let prepared = DeferredEmbedder.prepare(
            directory: URL(fileURLWithPath: configuration.modelDirectory),
            servedAs: configuration.localModel
        )
        switch prepared {
        case .success(let embedder):
            logger.info(
                "local embedding model available; it loads on first use",
                metadata: [
                    "embedding.model": "\(embedder.modelName)", "embedding.dimensions": "\(embedder.dimensions)",
                ]
            )
            return embedder
        case .failure(let error):
            logger.warning(
                "local embedding model unavailable; install it with scripts/install-model.sh",
                metadata: [
                    "embedding.model": "\(configuration.localModel)",
                    "embedding.directory": "\(configuration.modelDirectory)", "error": "\(error)",
                ]
            )
            return nil
        }
    }

    /// One line for `check`, after loading the model fully.
    static func describe(_ configuration: EmbeddingConfiguration) -> String {
        guard !configuration.localModel.isEmpty else { return "off" }
        switch Self.result(configuration) {
        case .success(let embedder):
            return "\(embedder.modelName): ok (\(embedder.dimensions) dimensions, \(configuration.modelDirectory))"
        case .failure(let error):
            return
                "\(configuration.localModel): unavailable (\(configuration.modelDirectory): \(error)); run scripts/install-model.sh"
        }
    }

    /// The model the semantic cache embeds prompts with (`[embeddings]`'s), loaded now.
    static func cacheModel(_ configuration: EmbeddingConfiguration) throws -> MiniLMEmbedder {
        guard !configuration.localModel.isEmpty else {
            throw ValidationError("[embeddings] local_model is \"\": the semantic cache needs the model")
        }
        return try MiniLMEmbedder(
            modelDirectory: URL(fileURLWithPath: configuration.modelDirectory),
            modelName: configuration.localModel
        )
    }

    /// For `serve`: the semantic cache's model when the cache wants one, else `nil` (logged).
    static func cacheModel(_ configuration: SidecarConfiguration, logger: Logger) -> MiniLMEmbedder? {
        guard configuration.cache.enabled, configuration.cache.semantic else { return nil }
        do {
            let model = try Self.cacheModel(configuration.embeddings)
            logger.info("semantic cache ready", metadata: ["embedding.model": "\(model.modelName)"])
            return model
        } catch {
            logger.warning(
                "semantic cache off: its embedding model did not load; exact caching only",
                metadata: ["error": "\(error)"]
            )
            return nil
        }
    }

    static func result(_ configuration: EmbeddingConfiguration) -> Result<LocalEmbedder, any Error> {
        LocalEmbedder.load(
            directory: URL(fileURLWithPath: configuration.modelDirectory),
            servedAs: configuration.localModel
        )
    }
}
