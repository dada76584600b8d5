import NIOCore
import NIOHTTP1
import SidecarHTTP
import SidecarPolicy

/// Writes a cached answer to the client in the shape it asked for, at cost 0: a whole JSON
/// body with `X-Query-Cost: 0`, or an SSE stream (the stored chunks, `[DONE]`, and the cost
/// trailer), with the sidecar's headers (`X-Sidecar-Cache: exact|semantic`, `X-Model-Used`:
/// the model that made the answer).
enum CacheReplay {
    /// What a hit tells the request's context: served from the cache at cost 0 by the stored
    /// answer's model.
    static func prepare(_ context: RequestContext, for hit: CachedAnswer) {
        context.cacheStatus = hit.kind
        context.cost = .zero
        context.served = .init(model: hit.answer.model, upstream: hit.answer.upstream, fallbackFrom: nil)
        context.app = context.request.app
    }

    /// Sends the answer as a stream when the request asked for one, else whole. The status
    /// sent, or `nil` when the stored answer could not be read (nothing was sent).
    static func send(_ answer: StoredAnswer, context: RequestContext, to sink: any ClientResponseSink) -> Int? {
        if context.decoded?.completion?.isStreaming ?? false {
            let includeUsage = context.decoded?.completion?.streamOptions?.includeUsage == true
            guard let events = AnswerShaper.events(answer, includeUsage: includeUsage) else { return nil }
            var headers = ResponseRelay.headers(
                for: context,
                upstreamHeaders: ["Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"]
            )
            headers.append((SidecarHeaders.trailer.rawName, SidecarHeaders.queryCost.rawName))
            var body = ByteBuffer()
            body.reserveCapacity(events.reduce(16) { $0 + $1.count + 8 })
            for event in events {
                body.writeString("data: ")
                body.writeBytes(event)
                body.writeString("\n\n")
            }
            body.writeString("data: [DONE]\n\n")
            sink.sendHead(status: .ok, headers: HTTPHeaders(headers), contentLength: nil)
            sink.sendBody(body, flush: false)
            sink.sendEnd(trailers: [SidecarHeaders.queryCost.rawName: "0"], abort: false)
            return 200
        }
        guard let body = AnswerShaper.wholeBody(answer) else { return nil }
        // A whole answer goes out as the relay sends one (the context's cost is 0).
        var head = HTTPResponseHead(version: .http1_1, status: .ok)
        head.headers.add(name: "Content-Type", value: "application/json")
        ResponseRelay().sendWhole(head, body: ByteBuffer(bytes: body), context: context, to: sink)
        return 200
    }
}
