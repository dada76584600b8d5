import ServiceLifecycle

/// Closes the response cache's Redis connections and stops its embedder on graceful shutdown.
struct CacheService: Service {
    let cache: SidecarResponseCache

    func run() async throws {
        try? await gracefulShutdown()
        await self.cache.shutdown()
    }
}

/// Stops the prompt embedder's worker thread on graceful shutdown.
struct EmbedderService: Service {
    let embedder: PromptEmbedder

    func run() async throws {
        try? await gracefulShutdown()
        self.embedder.shutdown()
    }
}
