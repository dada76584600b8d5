import Logging
import NIOCore
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

/// Writes the access log out every 200 ms, and what is left at shutdown.
struct AccessLogService: Service {
    let log: AccessLog
    let eventLoop: any EventLoop

    func run() async throws {
        self.log.start(on: self.eventLoop)
        try? await gracefulShutdown()
        self.log.stop()
    }
}
