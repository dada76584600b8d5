import NIOCore
import SidecarPolicy
import Synchronization

/// The cache lookup and cache store phases (``SidecarResponseCache``; ``DisabledResponseCache``
/// when `[cache] enabled = false`).
protocol ResponseCache: Sendable {
    /// Decides whether the request is looked up and stored (``RequestContext/cachePlan``,
    /// ``RequestContext/cacheStatus``), then looks it up: at once in memory, or later when a
    /// shared store or the embedder is asked (the future completes on `eventLoop`).
    func lookup(_ context: RequestContext, on eventLoop: any EventLoop) -> CacheLookup
    /// Offers a complete 200 answer for storing (nothing happens unless the plan says so).
    func store(_ context: RequestContext, answer: @autoclosure () -> StoredAnswer.Body)
}

enum CacheLookup {
    case hit(CachedAnswer)
    case miss
    /// The answer comes later: a shared store or the embedder is asked.
    case pending(EventLoopFuture<CacheLookupResult>)
}

/// A lookup that finished later: the hit, if any, and the prompt's embedding, if one was made
/// (kept in the context for the cache store and the router).
struct CacheLookupResult: Sendable {
    var hit: CachedAnswer?
    var embedding: [Float]?
    /// Whether the prompt was given to the embedder (so the route phase need not try again).
    var embeddingTried = false
}

/// A stored answer, replayed in place of forwarding.
struct CachedAnswer: Sendable {
    var answer: StoredAnswer
    /// `exact` or `semantic`, for `X-Sidecar-Cache`.
    var kind: String
}

/// What the cache decided for one request.
struct CachePlan: Sendable {
    var key: CacheKey
    /// The semantic context (everything but the prompt) when a semantic lookup applies.
    var context: CacheKey?
    /// The prompt a semantic lookup compares (the last user message).
    var prompt: String
    var lookup: Bool
    var store: Bool
    var ttlSeconds: Int
    /// An embedding that arrived after the lookup gave up waiting: still good for storing.
    var lateEmbedding: LateEmbedding?
    /// The digest of the request's bytes as received, remembered with the key on a store.
    var rawKey: CacheKey?
}

/// Where an embedding that missed the lookup's budget lands (written by the embedder's thread,
/// read by the cache store).
final class LateEmbedding: Sendable {
    private let vector = Mutex<[Float]?>(nil)

    var value: [Float]? { self.vector.withLock { $0 } }

    func set(_ vector: [Float]) {
        self.vector.withLock { $0 = vector }
    }
}

/// No cache: every lookup is a bypass, nothing is stored.
struct DisabledResponseCache: ResponseCache {
    func lookup(_ context: RequestContext, on eventLoop: any EventLoop) -> CacheLookup {
        if case .completion? = context.decoded { context.cacheStatus = "bypass" }
        return .miss
    }

    func store(_ context: RequestContext, answer: @autoclosure () -> StoredAnswer.Body) {}
}
