import NIOCore

/// The cache lookup and cache store phases. The cache is not built yet:
/// ``DisabledResponseCache`` finds nothing and keeps nothing, and every answer says
/// `X-Sidecar-Cache: miss`.
protocol ResponseCache: Sendable {
    /// A stored answer for this request, if any.
    func lookup(_ context: RequestContext) -> CachedAnswer?
    /// Offers a complete answer (its body as the client received it) for storing.
    func store(_ context: RequestContext, body: ByteBuffer)
}

/// A stored answer, replayed in place of forwarding.
struct CachedAnswer: Sendable {
    var body: ByteBuffer
    /// `exact` or `semantic`, for `X-Sidecar-Cache`.
    var kind: String
}

/// No cache: every lookup misses, nothing is stored.
struct DisabledResponseCache: ResponseCache {
    func lookup(_ context: RequestContext) -> CachedAnswer? { nil }
    func store(_ context: RequestContext, body: ByteBuffer) {}
}
