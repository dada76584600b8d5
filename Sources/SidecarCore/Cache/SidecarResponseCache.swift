import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SidecarHTTP
import SidecarOpenAI
import SidecarPolicy

/// The response cache: an exact lookup by the request's canonical key, then a semantic one
/// among entries whose everything-but-the-prompt matches exactly.
///
/// - Keys: SHA-256 over the tenant (namespace header, and the client credential's hash unless
///   `shared`), the endpoint and the canonical body (``CanonicalJSON``; `stream`,
///   `stream_options`, `user`, `metadata` and `store` left out, since they change the answer's
///   shape, not the answer).
/// - Stores: memory (an LRU bounded by entries and bytes) and, with `backend = "redis"`, the
///   fleet's shared store behind it (``SharedAnswerStore``).
/// - Semantic: the last user message is embedded off the event loop (``PromptEmbedder``, within
///   the latency budget) and searched in the ``SemanticIndex``; a hit needs the similarity
///   threshold and the ``SemanticGuard``.
/// - Control per request: `Cache-Control: no-cache` (no lookup), `no-store` (no storing),
///   `X-Sidecar-Cache-TTL`, `X-Sidecar-Cache-Namespace`.
final class SidecarResponseCache: ResponseCache {
    static let droppedMembers = CanonicalJSON.MemberNames.answerShape

    let configuration: CacheConfiguration
    /// Answers by canonical key, also found by the digest of the request's raw bytes once an
    /// entry has been asked for again (an alias: later byte-identical repeats are found without
    /// the canonical form).
    let memory: MemoryCacheStore
    let index: SemanticIndex?
    let embedder: PromptEmbedder?
    let shared: (any SharedAnswerStore)?
    let guardRule: SemanticGuard
    let metrics: SidecarMetrics
    let logger: Logger
    /// Embed prompts past the model's length too (by their start), for the learned router;
    /// they are never looked up or stored in the semantic index.
    let keepCutEmbeddings: Bool

    /// - Parameter keepCutEmbeddings: whether the router wants embeddings of long prompts.
    /// `routing.pin_header`, `X-Sidecar-Tier` and `X-Sidecar-Max-Cost`: part of every key.
    private let routingHeaders: [String]

    init(
        configuration: CacheConfiguration,
        embedder: PromptEmbedder?,
        shared: (any SharedAnswerStore)?,
        metrics: SidecarMetrics,
        logger: Logger,
        keepCutEmbeddings: Bool = false,
        pinHeader: String = RoutingConfiguration().pinHeader
    ) {
        self.configuration = configuration
        // The request headers that choose the answering model: a pinned request or a forced tier
        // never gets an answer made for a routed one (or the reverse).
        self.routingHeaders = [pinHeader, SidecarHeaders.tier.rawName, SidecarHeaders.maxCost.rawName]
        self.keepCutEmbeddings = keepCutEmbeddings
        self.memory = MemoryCacheStore(
            limits: .init(maxEntries: configuration.maxEntries, maxBytes: configuration.maxMegabytes << 20)
        )
        let semantic = configuration.semantic ? embedder : nil
        self.embedder = semantic
        self.index = semantic.map {
            SemanticIndex(dimensions: $0.model.dimensions, maxEntries: configuration.semanticMaxEntries)
        }
        self.shared = shared
        self.guardRule = SemanticGuard(threshold: Float(configuration.semanticThreshold))
        self.metrics = metrics
        self.logger = logger
        if let shared, let index = self.index {
            shared.follow(into: index)
        }
    }

    /// Stops following the shared store and closes it (the embedder is stopped by its owner).
    func shutdown() async {
        await self.shared?.shutdown()
    }

    static var now: Int64 { Int64(Date().timeIntervalSince1970) }

    // MARK: Lookup

    func lookup(_ context: RequestContext, on eventLoop: any EventLoop) -> CacheLookup {
        // A byte-identical repeat of an entry asked for before skips the canonical form: its raw
        // bytes' digest names the canonical key the entry was stored under.
        let request = context.request
        let control = Self.cacheControl(request.headers)
        let tenant = self.tenant(request.headers)
        let raw = control.noCache ? nil : Self.rawKey(request, tenant: tenant)
        if let raw, let answer = self.memory.get(raw, now: Self.now) {
            return .hit(CachedAnswer(answer: answer, kind: "exact"))
        }
        guard var planned = self.plan(context, control: control, tenant: tenant) else {
            if case .passThrough? = context.decoded { return .miss }
            context.cacheStatus = "bypass"
            self.metrics.recordCacheLookup("bypass")
            return .miss
        }
        planned.rawKey = raw
        let plan = planned
        context.cachePlan = plan
        guard plan.lookup else {
            context.cacheStatus = "bypass"
            self.metrics.recordCacheLookup("bypass")
            return .miss
        }
        if let answer = self.memory.get(plan.key, now: Self.now) {
            // The alias is added on the first repeat, not when the answer is stored: a miss
            // (most requests) does not pay for it.
            if let raw { self.memory.addAlias(raw, for: plan.key) }
            return .hit(CachedAnswer(answer: answer, kind: "exact"))
        }
        guard self.shared != nil || plan.context != nil else {
            self.metrics.recordCacheLookup("miss")
            return .miss
        }
        let exact: EventLoopFuture<StoredAnswer?> =
            self.shared.map { $0.get(plan.key, on: eventLoop) } ?? eventLoop.makeSucceededFuture(nil)
        return .pending(
            exact.flatMap { answer -> EventLoopFuture<CacheLookupResult> in
                if let answer {
                    self.memory.set(plan.key, alias: plan.rawKey, answer)
                    return eventLoop.makeSucceededFuture(
                        CacheLookupResult(hit: CachedAnswer(answer: answer, kind: "exact"))
                    )
                }
                return self.semanticLookup(plan, on: eventLoop)
            }
        )
    }

    /// The plan for a request, or `nil` when it is not cacheable.
    func plan(_ context: RequestContext) -> CachePlan? {
        let headers = context.request.headers
        return self.plan(context, control: Self.cacheControl(headers), tenant: self.tenant(headers))
    }

    private func plan(
        _ context: RequestContext,
        control: (noCache: Bool, noStore: Bool),
        tenant: [UInt8]
    ) -> CachePlan? {
        let request = context.request
        let view: OpenAIRequestView?
        switch context.decoded {
        case .completion(let completion, _)?: view = completion
        case .embeddings?: view = nil
        default: return nil
        }
        let (noCache, noStore) = control
        if noCache && noStore { return nil }
        var ttl = self.configuration.ttlSeconds
        if let text = request.headers.first(name: SidecarHeaders.cacheTTL.rawName), let seconds = Int(text),
            seconds >= 0
        {
            ttl = min(seconds, 31_536_000)
        }
        // The prompt a semantic lookup compares: the last user message, text only.
        var prompt = ""
        if let view, self.index != nil, view.toolCount == 0 || self.configuration.semanticWithTools {
            if let last = view.messages?.last(where: { $0.role == "user" }), let content = last.content,
                content.nonTextPartCount == 0
            {
                prompt = content.text
            } else if view.messages == nil, case .text(let text)? = view.prompt {
                prompt = text
            }
        }
        let semantic = prompt.utf8.contains { $0 > 0x20 }
        guard
            let canonical = request.body.withUnsafeReadableBytes({ raw in
                CanonicalJSON.canonicalize(
                    raw.bindMemory(to: UInt8.self),
                    dropping: Self.droppedMembers,
                    maskingPrompt: semantic
                )
            })
        else { return nil }
        // `n` above 1 and a `temperature` above `max_temperature` are not cached.
        if let n = canonical.n, n > 1 { return nil }
        if let limit = self.configuration.maxTemperature, let temperature = canonical.temperature, temperature > limit {
            return nil
        }
        // The parts one at a time (the same key as `CacheKey(hashing:)` of them, no array made).
        let endpoint = request.endpoint.label
        var exact = CacheKey.Hasher256()
        exact.update(part: Self.exactPrefix)
        exact.update(part: tenant)
        exact.update(part: endpoint)
        exact.update(part: canonical.context)
        exact.update(part: canonical.prompt)
        guard let key = exact.finish() else { return nil }
        var contextKey: CacheKey?
        if semantic && canonical.maskedPrompt {
            var hasher = CacheKey.Hasher256()
            hasher.update(part: Self.semanticPrefix)
            hasher.update(part: tenant)
            hasher.update(part: endpoint)
            hasher.update(part: canonical.context)
            contextKey = hasher.finish()
        }
        return CachePlan(
            key: key,
            context: contextKey,
            prompt: prompt,
            lookup: !noCache,
            store: !noStore && ttl > 0,
            ttlSeconds: ttl,
            lateEmbedding: contextKey == nil ? nil : LateEmbedding()
        )
    }

    static func cacheControl(_ headers: HTTPHeaders) -> (noCache: Bool, noStore: Bool) {
        var noCache = false
        var noStore = false
        for (name, value) in headers where name.caseInsensitiveEquals("cache-control") {
            let value = value.lowercased()
            noCache = noCache || value.contains("no-cache")
            noStore = noStore || value.contains("no-store")
        }
        return (noCache, noStore)
    }

    /// What each kind of key hashes first, so no two kinds can collide.
    static let exactPrefix = Array("llm-sidecar/1".utf8)
    static let semanticPrefix = Array("llm-sidecar/1/semantic".utf8)
    static let rawPrefix = Array("llm-sidecar/1/raw".utf8)

    /// The digest of the request as received (tenant, endpoint, body bytes).
    private static func rawKey(_ request: ProxyRequest, tenant: [UInt8]) -> CacheKey? {
        var hasher = CacheKey.Hasher256()
        hasher.update(part: Self.rawPrefix)
        hasher.update(part: tenant)
        hasher.update(part: request.endpoint.label)
        request.body.withUnsafeReadableBytes { hasher.update(part: $0) }
        return hasher.finish()
    }

    /// The namespace header and, unless entries are shared, the credential's hash.
    private func tenant(_ headers: HTTPHeaders) -> [UInt8] {
        var tenant = Array((headers.first(name: SidecarHeaders.cacheNamespace.rawName) ?? "").utf8)
        tenant.append(0)
        for name in self.routingHeaders {
            if let value = headers.first(name: name) { tenant.append(contentsOf: value.utf8) }
            tenant.append(0)
        }
        // The credential itself goes into the key's digest (never stored: only the digest is).
        if !self.configuration.shared { tenant.append(contentsOf: (headers.first(name: "authorization") ?? "").utf8) }
        return tenant
    }

    private func semanticLookup(_ plan: CachePlan, on eventLoop: any EventLoop) -> EventLoopFuture<CacheLookupResult> {
        guard let context = plan.context, let late = plan.lateEmbedding, let embedder = self.embedder,
            let index = self.index
        else {
            self.metrics.recordCacheLookup("miss")
            return eventLoop.makeSucceededFuture(CacheLookupResult())
        }
        let promise = eventLoop.makePromise(of: (SemanticIndex.SearchResult?, [Float]?).self)
        let guardRule = self.guardRule
        let threshold = Float(self.configuration.semanticThreshold)
        let prompt = plan.prompt
        embedder.embed(
            prompt,
            budgetMilliseconds: self.configuration.semanticBudgetMilliseconds,
            keepCut: self.keepCutEmbeddings
        ) { result in
            switch result {
            case .success(let embedding) where embedding.cut:
                // Only the router can use the start of a long prompt.
                self.metrics.recordSemanticSkip(reason: PromptEmbedder.Skip.tooLong.rawValue)
                promise.succeed((nil, embedding.vector))
            case .success(let embedding):
                let vector = embedding.vector
                late.set(vector)
                let found = index.search(context: context, vector: vector, threshold: threshold, now: Self.now) {
                    cached,
                    similarity in guardRule.admits(cached: cached, incoming: prompt, similarity: similarity)
                }
                promise.succeed((found, vector))
            case .failure(let skip):
                self.metrics.recordSemanticSkip(reason: skip.rawValue)
                promise.succeed((nil, nil))
            }
        }
        // Never wait past the budget (twice the estimate's): go on without the lookup.
        let budget = TimeAmount.milliseconds(Int64(max(1, self.configuration.semanticBudgetMilliseconds * 2)))
        let timer = eventLoop.scheduleTask(in: budget) {
            self.metrics.recordSemanticSkip(reason: "late")
            promise.succeed((nil, nil))
        }
        return promise.futureResult.flatMap { found, vector -> EventLoopFuture<CacheLookupResult> in
            timer.cancel()
            guard let match = found?.match else {
                self.metrics.recordCacheLookup("miss")
                return eventLoop.makeSucceededFuture(CacheLookupResult(embedding: vector, embeddingTried: true))
            }
            if let answer = self.memory.get(match.key, now: Self.now) {
                return eventLoop.makeSucceededFuture(
                    CacheLookupResult(
                        hit: CachedAnswer(answer: answer, kind: "semantic"),
                        embedding: vector,
                        embeddingTried: true
                    )
                )
            }
            let remote = self.shared.map { $0.get(match.key, on: eventLoop) } ?? eventLoop.makeSucceededFuture(nil)
            return remote.map { answer in
                guard let answer else {
                    self.metrics.recordCacheLookup("miss")
                    return CacheLookupResult(embedding: vector, embeddingTried: true)
                }
                self.memory.set(match.key, answer)
                return CacheLookupResult(
                    hit: CachedAnswer(answer: answer, kind: "semantic"),
                    embedding: vector,
                    embeddingTried: true
                )
            }
        }
    }

    // MARK: Store

    func store(_ context: RequestContext, answer makeBody: @autoclosure () -> StoredAnswer.Body) {
        guard let plan = context.cachePlan, plan.store, let served = context.served else { return }
        let body = makeBody()
        let expiresAt = Self.now + Int64(plan.ttlSeconds)
        let answer = StoredAnswer(
            body: body,
            model: served.model,
            upstream: served.upstream,
            cost: context.cost?.header ?? "0",
            expiresAt: expiresAt
        )
        self.memory.set(plan.key, answer)
        var entry: SemanticIndex.Entry?
        if let semanticContext = plan.context, let vector = context.embedding ?? plan.lateEmbedding?.value,
            let index = self.index
        {
            let made = SemanticIndex.Entry(
                context: semanticContext,
                key: plan.key,
                vector: vector,
                prompt: plan.prompt,
                expiresAt: expiresAt
            )
            index.insert(made)
            entry = made
        }
        self.shared?.set(plan.key, answer, ttlSeconds: plan.ttlSeconds, semantic: entry)
        if case .events = body {
            self.metrics.recordCacheStore(kind: "stream")
        } else {
            self.metrics.recordCacheStore(kind: "whole")
        }
    }
}

/// The fleet's shared store (Redis): answers by key, and the semantic entries every sidecar
/// adds to its own index. Failures never fail a request: a `get` that fails or times out
/// yields `nil` (counted and logged by the store).
protocol SharedAnswerStore: Sendable {
    func get(_ key: CacheKey, on eventLoop: any EventLoop) -> EventLoopFuture<StoredAnswer?>
    func set(_ key: CacheKey, _ answer: StoredAnswer, ttlSeconds: Int, semantic: SemanticIndex.Entry?)
    /// Adds the fleet's semantic entries to `index`, now and as they come.
    func follow(into index: SemanticIndex)
    func shutdown() async
}
