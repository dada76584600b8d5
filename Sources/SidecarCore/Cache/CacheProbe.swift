import Logging
import Metrics
import NIOCore
import SidecarEmbedding
import SidecarOpenAI
import SidecarPolicy

/// What `llm-sidecar cache-probe` measures: for each pair of prompts, an empty cache stores an
/// answer for the first (a one-message chat request) and looks the second up, through the same
/// keys, index, threshold and guard as `serve` (the embedding is computed in batches up front
/// rather than through the request queue).
public struct CacheProbe: Sendable {
    public struct Outcome: Sendable, Equatable {
        public var hit: Bool
        /// The highest similarity the lookup saw (1 for an exact hit).
        public var similarity: Float
    }

    private let configuration: SidecarConfiguration
    private let embedder: PromptEmbedder

    public init(configuration: SidecarConfiguration, model: MiniLMEmbedder) {
        self.configuration = configuration
        self.embedder = PromptEmbedder(model: model)
    }

    /// One outcome per pair, in order.
    public func run(_ pairs: [(stored: String, asked: String)]) throws -> [Outcome] {
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(pairs.count)
        let batch = 64
        var start = 0
        while start < pairs.count {
            let part = pairs[start..<min(pairs.count, start + batch)]
            let vectors = try self.embedder.embedNow(part.flatMap { [$0.stored, $0.asked] })
            for (offset, pair) in part.enumerated() {
                outcomes.append(self.probe(pair, stored: vectors[2 * offset], asked: vectors[2 * offset + 1]))
            }
            start += batch
        }
        return outcomes
    }

    public func shutdown() {
        self.embedder.shutdown()
    }

    private func probe(_ pair: (stored: String, asked: String), stored: [Float], asked: [Float]) -> Outcome {
        let cache = SidecarResponseCache(
            configuration: self.configuration.cache,
            embedder: self.embedder,
            shared: nil,
            metrics: SidecarMetrics(factory: NOOPMetricsHandler.instance),
            logger: Logger(label: "cache-probe", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        guard let first = Self.context(pair.stored), let plan = cache.plan(first) else {
            return Outcome(hit: false, similarity: 0)
        }
        first.cachePlan = plan
        first.embedding = stored
        first.served = .init(model: "probe", upstream: "probe", fallbackFrom: nil)
        cache.store(first, answer: .whole(Array(#"{"object":"chat.completion","choices":[]}"#.utf8)))
        guard let second = Self.context(pair.asked), let lookup = cache.plan(second) else {
            return Outcome(hit: false, similarity: 0)
        }
        if cache.memory.get(lookup.key, now: SidecarResponseCache.now) != nil {
            return Outcome(hit: true, similarity: 1)
        }
        guard let context = lookup.context, let index = cache.index else { return Outcome(hit: false, similarity: 0) }
        let result = index.search(
            context: context,
            vector: asked,
            threshold: Float(self.configuration.cache.semanticThreshold),
            now: SidecarResponseCache.now
        ) { cached, similarity in
            cache.guardRule.admits(cached: cached, incoming: pair.asked, similarity: similarity)
        }
        return Outcome(hit: result.match != nil, similarity: result.bestSimilarity)
    }

    /// A decoded one-message chat request for `prompt`.
    private static func context(_ prompt: String) -> RequestContext? {
        var body = ByteBuffer(string: #"{"model":"auto","messages":[{"role":"user","content":"#)
        body.writeBytes(JSONString.encode(prompt))
        body.writeString("}]}")
        let request = ProxyRequest(
            endpoint: .chatCompletions,
            method: .post,
            path: "/v1/chat/completions",
            headers: [:],
            body: body,
            requestID: "probe"
        )
        let context = RequestContext(request: request)
        guard let decoded = try? RequestDecoder.decodeWithLayout(body) else { return nil }
        context.decoded = .completion(decoded.view, layout: decoded.layout)
        return context
    }
}
