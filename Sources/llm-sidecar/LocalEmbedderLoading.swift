import ArgumentParser
import Foundation
import Logging
import SidecarCore
import SidecarEmbedding
import SidecarPolicy

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

    /// For `serve`: the model that embeds prompts, when the semantic cache or the learned router
    /// wants one, else `nil` (logged).
    static func promptModel(_ configuration: SidecarConfiguration, router: Bool, logger: Logger) -> MiniLMEmbedder? {
        let semantic = configuration.cache.enabled && configuration.cache.semantic
        guard semantic || router else { return nil }
        do {
            let model = try Self.cacheModel(configuration.embeddings)
            logger.info(
                "prompt embedder ready",
                metadata: [
                    "embedding.model": "\(model.modelName)", "semantic_cache": "\(semantic)", "router": "\(router)",
                ]
            )
            return model
        } catch {
            logger.warning(
                "prompt embedder off: its model did not load; exact caching only, heuristic routing only",
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

/// Loads the learned router named by `routing.router` (or `--router`).
enum RouterLoading {
    /// For `serve`: the router, or `nil` (logged) when none is configured or it does not load.
    static func load(_ configuration: RoutingConfiguration, logger: Logger) -> LearnedRouter? {
        guard !configuration.router.isEmpty else { return nil }
        do {
            let router = try LearnedRouter.load(directory: configuration.router)
            logger.info(
                "learned router loaded",
                metadata: [
                    "router.directory": "\(configuration.router)",
                    "router.fit_version": "\(router.provenance.fitVersion)",
                    "router.data_sha256": "\(router.provenance.dataSHA256)",
                ]
            )
            return router
        } catch {
            logger.warning(
                "learned router unavailable; the heuristic scorer routes",
                metadata: ["error": "\(error)"]
            )
            return nil
        }
    }

    /// For `route` and `calibrate`: `--router DIR` must load; the configured one may be absent.
    static func load(option: String?, configuration: RoutingConfiguration) throws -> LearnedRouter? {
        if let option {
            do { return try LearnedRouter.load(directory: option) } catch {
                throw ValidationError("--router: \(error)")
            }
        }
        guard !configuration.router.isEmpty else { return nil }
        return try? LearnedRouter.load(directory: configuration.router)
    }

    /// One line for `check`.
    static func describe(_ configuration: RoutingConfiguration) -> String {
        guard !configuration.router.isEmpty else { return "off (heuristic scorer)" }
        do {
            let router = try LearnedRouter.load(directory: configuration.router)
            return "learned, \(configuration.router) (fit \(router.provenance.fitVersion), "
                + "\(router.provenance.dataLines) prompts, data sha256 \(router.provenance.dataSHA256.prefix(12)))"
        } catch {
            return "unavailable (\(error)); the heuristic scorer routes"
        }
    }
}
