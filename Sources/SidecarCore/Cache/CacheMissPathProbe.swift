import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import SidecarOpenAI
import SidecarPolicy

/// What `cache-bench` times on the miss path: the work the response cache adds to a request it
/// cannot answer (the lookup phase, then storing the answer), through the same
/// ``SidecarResponseCache`` as `serve`, with the in-memory store filled to its bound so every
/// store also evicts. Each request has a new prompt, as in the load benchmark.
public struct CacheMissPathProbe {
    private let cache: SidecarResponseCache
    private let answer: ByteBuffer
    private let eventLoop: any EventLoop

    public init(configuration: CacheConfiguration, eventLoop: any EventLoop) {
        self.cache = SidecarResponseCache(
            configuration: configuration,
            embedder: nil,
            shared: nil,
            metrics: SidecarMetrics(factory: NOOPMetricsHandler.instance),
            logger: Logger(label: "cache-bench", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        self.eventLoop = eventLoop
        self.answer = ByteBuffer(
            string:
                #"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"#
                + #""message":{"role":"assistant","content":"An answer of a few words."},"finish_reason":"stop"}],"#
                + #""usage":{"prompt_tokens":12,"completion_tokens":6,"total_tokens":18}}"#
        )
    }

    /// Looks `body` up (it must miss) and stores an answer for it; returns the nanoseconds the
    /// cache spent, or `nil` if the body was not cacheable or was found.
    public func missAndStore(_ body: String, headers: HTTPHeaders) -> UInt64? {
        let request = ProxyRequest(
            endpoint: .chatCompletions,
            method: .post,
            path: "/v1/chat/completions",
            headers: headers,
            body: ByteBuffer(string: body),
            requestID: "bench"
        )
        let context = RequestContext(request: request)
        guard let decoded = try? RequestDecoder.decodeWithLayout(request.body) else { return nil }
        context.decoded = .completion(decoded.view, layout: decoded.layout)
        context.served = .init(model: "gpt-4o", upstream: "cloud", fallbackFrom: nil)
        let start = DispatchTime.now().uptimeNanoseconds
        guard case .miss = self.cache.lookup(context, on: self.eventLoop), context.cachePlan != nil else { return nil }
        self.cache.store(context, answer: .whole(Array(buffer: self.answer)))
        return DispatchTime.now().uptimeNanoseconds - start
    }
}
