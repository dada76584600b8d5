import Logging
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

/// Saves the spend ledger every few seconds (when it changed) and at shutdown, and keeps it in
/// step with the fleet's totals in Redis when they are shared.
struct SpendService: Service {
    let ledger: SpendLedger
    let logger: Logger
    static let period = Duration.seconds(2)

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.period)
                await self.persist()
            }
        }
        await self.persist()
    }

    private func persist() async {
        await self.ledger.flushToFleet()
        do {
            try self.ledger.save()
        } catch {
            self.logger.error("spend state not saved", metadata: ["error": "\(error)"])
        }
    }
}
