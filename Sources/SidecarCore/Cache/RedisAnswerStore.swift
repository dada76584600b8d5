import Logging
import NIOCore
import NIOPosix
import SidecarPolicy
import SidecarRedis
import Synchronization

/// The fleet's shared cache in Redis (``SharedAnswerStore``).
///
/// - Answers: `llmsc:1:a:<sha256 hex>`, the encoded ``StoredAnswer``, expiring with its TTL
///   (`SET ... EX`). One key per entry and no multi-key command, so the keys may live on any
///   Redis Cluster slot.
/// - Semantic entries: appended to one stream, `llmsc:1:semantic` (`XADD ... MAXLEN ~`), with
///   the context, the key, the expiry, the prompt and the vector (384 float32). Every sidecar
///   follows the stream (`XREAD`, every ``followInterval``, from the start when it starts, in
///   batches decoded off the event loops) into its own in-memory ``SemanticIndex``, so each
///   host finds the others' entries.
///
/// Redis never fails or slows a request beyond its timeout (`redis_timeout_ms`): a failed call
/// is a miss, counted in `llm_sidecar_cache_backend_errors_total`; the client then fails fast
/// while Redis is down, and reconnects in the background ("redis unavailable" and "redis back"
/// are logged once each).
final class RedisAnswerStore: SharedAnswerStore {
    static let answerPrefix = "llmsc:1:a:"
    static let semanticStream = "llmsc:1:semantic"
    static let followInterval = TimeAmount.milliseconds(500)

    let client: RedisClient
    private let group: any EventLoopGroup
    private let metrics: SidecarMetrics
    private let logger: Logger
    private let semanticLimit: Int
    private let follower = Mutex<Follower>(Follower())

    private struct Follower {
        var lastID = "0"
        var task: RepeatedTask?
        var stopped = false
    }

    init(
        configuration: CacheConfiguration,
        metrics: SidecarMetrics,
        logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws {
        var redis = try RedisConfiguration(url: configuration.redisURL)
        let timeout = TimeAmount.milliseconds(Int64(configuration.redisTimeoutMilliseconds))
        redis.connectTimeout = timeout
        redis.commandTimeout = timeout
        self.client = try RedisClient(
            configuration: redis,
            eventLoopGroup: group,
            logger: logger,
            onStateChange: { state in
                metrics.recordCacheBackendUp(backend: "redis", up: state == .up)
                switch state {
                case .down: logger.warning("redis unavailable; serving uncached until it is back")
                case .up: logger.info("redis back; caching resumes")
                case .shutdown: break
                }
            }
        )
        metrics.recordCacheBackendUp(backend: "redis", up: true)
        self.group = group
        self.metrics = metrics
        self.logger = logger
        self.semanticLimit = max(1, configuration.semanticMaxEntries)
    }

    func get(_ key: CacheKey, on eventLoop: any EventLoop) -> EventLoopFuture<StoredAnswer?> {
        guard self.client.isAvailable else { return eventLoop.makeSucceededFuture(nil) }
        return self.client.command([Array("GET".utf8), Array((Self.answerPrefix + key.hex).utf8)], on: eventLoop)
            .map { reply -> StoredAnswer? in
                guard let bytes = reply.bytes else { return nil }
                return StoredAnswer(decoding: bytes).flatMap { $0.expiresAt > SidecarResponseCache.now ? $0 : nil }
            }
            .flatMapErrorWithEventLoop { _, eventLoop in
                self.metrics.recordCacheBackendError(backend: "redis", operation: "get")
                return eventLoop.makeSucceededFuture(nil)
            }
    }

    func set(_ key: CacheKey, _ answer: StoredAnswer, ttlSeconds: Int, semantic entry: SemanticIndex.Entry?) {
        guard self.client.isAvailable, ttlSeconds > 0 else { return }
        var commands: [[[UInt8]]] = [
            [
                Array("SET".utf8), Array((Self.answerPrefix + key.hex).utf8), answer.encoded(), Array("EX".utf8),
                Array(String(ttlSeconds).utf8),
            ]
        ]
        if let entry {
            var vector: [UInt8] = []
            vector.reserveCapacity(entry.vector.count * 4)
            for value in entry.vector {
                withUnsafeBytes(of: value.bitPattern.littleEndian) { vector.append(contentsOf: $0) }
            }
            commands.append(
                ["XADD", Self.semanticStream, "MAXLEN", "~", String(self.semanticLimit), "*"].map { Array($0.utf8) } + [
                    Array("c".utf8), Array(entry.context.hex.utf8), Array("k".utf8), Array(entry.key.hex.utf8),
                    Array("x".utf8), Array(String(entry.expiresAt).utf8), Array("t".utf8), Array(entry.prompt.utf8),
                    Array("v".utf8), vector,
                ]
            )
        }
        self.client.pipeline(commands, on: self.group.any()).whenFailure { _ in
            self.metrics.recordCacheBackendError(backend: "redis", operation: "set")
        }
    }

    // MARK: Following the fleet's semantic entries

    /// Reads the semantic stream into `index` now and every ``followInterval`` until
    /// ``shutdown()``.
    func follow(into index: SemanticIndex) {
        let eventLoop = self.group.any()
        let task = eventLoop.scheduleRepeatedAsyncTask(initialDelay: .zero, delay: Self.followInterval) { _ in
            self.readSemanticEntries(into: index, on: eventLoop)
        }
        let stale = self.follower.withLock { follower -> RepeatedTask? in
            if follower.stopped { return task }
            follower.task = task
            return nil
        }
        stale?.cancel()
    }

    /// Entries read per `XREAD`; a full batch is followed at once by the next.
    static let followBatch = 1_000

    private func readSemanticEntries(into index: SemanticIndex, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        guard self.client.isAvailable else { return eventLoop.makeSucceededVoidFuture() }
        let lastID = self.follower.withLock { $0.lastID }
        let command = ["XREAD", "COUNT", String(Self.followBatch), "STREAMS", Self.semanticStream, lastID]
        return self.client.command(command, on: eventLoop).flatMap { reply in
            // Decoding and indexing a batch takes milliseconds: off the event loop.
            NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) { () -> Int in
                // [[stream, [[id, [field, value, ...]], ...]]]
                guard let entries = reply.array?.first?.array?.dropFirst().first?.array else { return 0 }
                let now = SidecarResponseCache.now
                var newest = lastID
                for entry in entries {
                    guard let parts = entry.array, parts.count == 2, let id = parts[0].string else { continue }
                    newest = id
                    if let made = Self.entry(parts[1].array ?? [], dimensions: index.dimensions), made.expiresAt > now {
                        index.insert(made)
                    }
                }
                self.follower.withLock { $0.lastID = newest }
                return entries.count
            }
        }.flatMap { count in
            count >= Self.followBatch
                ? self.readSemanticEntries(into: index, on: eventLoop) : eventLoop.makeSucceededVoidFuture()
        }.recover { _ in
            self.metrics.recordCacheBackendError(backend: "redis", operation: "follow")
        }
    }

    static func entry(_ fields: [RedisReply], dimensions: Int) -> SemanticIndex.Entry? {
        var values: [String: [UInt8]] = [:]
        var index = 0
        while index + 1 < fields.count {
            if let name = fields[index].string, let value = fields[index + 1].bytes { values[name] = value }
            index += 2
        }
        guard let context = values["c"].flatMap({ CacheKey(hex: String(decoding: $0, as: UTF8.self)) }),
            let key = values["k"].flatMap({ CacheKey(hex: String(decoding: $0, as: UTF8.self)) }),
            let expiry = values["x"].flatMap({ Int64(String(decoding: $0, as: UTF8.self)) }),
            let prompt = values["t"], let raw = values["v"], raw.count == dimensions * 4
        else { return nil }
        var vector: [Float] = []
        vector.reserveCapacity(dimensions)
        for offset in stride(from: 0, to: raw.count, by: 4) {
            let bits =
                UInt32(raw[offset]) | UInt32(raw[offset + 1]) << 8 | UInt32(raw[offset + 2]) << 16
                | UInt32(raw[offset + 3]) << 24
            vector.append(Float(bitPattern: bits))
        }
        return SemanticIndex.Entry(
            context: context,
            key: key,
            vector: vector,
            prompt: String(decoding: prompt, as: UTF8.self),
            expiresAt: expiry
        )
    }

    func shutdown() async {
        let task = self.follower.withLock { follower -> RepeatedTask? in
            follower.stopped = true
            defer { follower.task = nil }
            return follower.task
        }
        task?.cancel()
        try? await self.client.shutdown()
    }
}
