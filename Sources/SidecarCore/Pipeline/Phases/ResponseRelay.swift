import Foundation
import NIOCore
import NIOHTTP1
import SidecarHTTP
import SidecarOpenAI
import SidecarPolicy

/// Relay phase: writes the answer to the client. A whole answer goes out with its length and
/// cost header; a stream passes through chunk by chunk (SSE events through ``StreamRelay``,
/// which reads `usage` and hides the usage chunk the sidecar asked for) and ends with its cost
/// as a trailer. Every response carries the sidecar's headers. One per request.
struct ResponseRelay {
    /// The upstreams' keys, taken out of a failed answer (status 400 and above) as it is
    /// relayed: some servers quote the key they refused.
    private let redactor: SecretRedactor
    private var events: StreamRelay?
    /// A failed answer's chunks without the upstreams' keys.
    private var redaction: SecretRedactor.Stream?

    init(redactor: SecretRedactor = SecretRedactor(secrets: [])) {
        self.redactor = redactor
    }

    /// The events of a relayed SSE stream, when the cache asked for them (``StreamRelay``).
    var capturedEvents: [[UInt8]]? { self.events?.captured }

    /// For an answer relayed as SSE events (priced, with a cost trailer): the usage the stream
    /// reported, else an estimate from the prompt and the text relayed.
    func streamUsage(estimatingPrompt promptTokens: @autoclosure () -> Int) -> (OpenAIUsage, estimated: Bool)? {
        self.events.map { $0.usage(estimatingPrompt: promptTokens) }
    }

    func sendWhole(_ head: HTTPResponseHead, body: ByteBuffer, context: RequestContext, to sink: any ClientResponseSink)
    {
        var headers = Self.headers(for: context, upstreamHeaders: head.headers)
        if let cost = context.cost {
            headers.append((SidecarHeaders.queryCost.rawName, cost.header))
            if cost.estimated { headers.append((SidecarHeaders.costEstimated.rawName, "true")) }
        }
        let body = head.status.code >= 400 && !self.redactor.isEmpty ? self.redactor.redact(body) : body
        sink.sendHead(status: head.status, headers: HTTPHeaders(headers), contentLength: body.readableBytes)
        if body.readableBytes > 0 { sink.sendBody(body, flush: false) }
        sink.sendEnd(trailers: nil, abort: false)
    }

    mutating func startStream(
        _ head: HTTPResponseHead,
        isEventStream: Bool,
        context: RequestContext,
        to sink: any ClientResponseSink
    ) {
        if head.status.code >= 400, !self.redactor.isEmpty { self.redaction = SecretRedactor.Stream(self.redactor) }
        var headers = Self.headers(for: context, upstreamHeaders: head.headers)
        var contentLength: Int?
        if isEventStream {
            let clientAskedForUsage = context.decoded?.completion?.streamOptions?.includeUsage == true
            self.events = StreamRelay(
                dropUsageChunk: !clientAskedForUsage,
                usageFill: clientAskedForUsage ? Self.usageFill(context) : nil,
                captureLimit: context.cachePlan?.store == true ? Self.captureLimit : 0
            )
            headers.append((SidecarHeaders.trailer.rawName, Self.trailerNames))
            if !headers.contains(where: { $0.0.caseInsensitiveEquals("cache-control") }) {
                headers.append(("Cache-Control", "no-cache"))
            }
        } else {
            contentLength = head.headers.first(name: "content-length").flatMap { Int($0) }
        }
        sink.sendHead(status: head.status, headers: HTTPHeaders(headers), contentLength: contentLength)
    }

    mutating func relay(_ chunk: ByteBuffer, to sink: any ClientResponseSink) {
        var chunk = chunk
        if self.redaction != nil {
            chunk = self.redaction?.next(chunk) ?? chunk
            guard chunk.readableBytes > 0 else { return }
        }
        guard self.events != nil else { return sink.sendBody(chunk, flush: true) }
        let out = self.events?.feed(chunk) ?? ByteBuffer()
        if out.readableBytes > 0 { sink.sendBody(out, flush: true) }
    }

    /// Ends a relayed answer. An SSE stream cut by `failure` gets an error event and `[DONE]`
    /// (unless the upstream sent its own); any other body cut short is not ended cleanly.
    mutating func endStream(failure: UpstreamError?, cost: CostQuote?, to sink: any ClientResponseSink) {
        if var redaction = self.redaction {
            self.redaction = nil
            let rest = redaction.finish()
            if rest.readableBytes > 0 { self.relay(rest, to: sink) }
        }
        guard var events = self.events else {
            return sink.sendEnd(trailers: nil, abort: failure != nil)
        }
        let ending = failure.map {
            (
                message: "Upstream \"\($0.upstream)\" failed mid-stream: \($0.detail)",
                code: "upstream_\($0.shortDescription)"
            )
        }
        if let end = events.finish(failure: ending) { sink.sendBody(end, flush: false) }
        self.events = events
        var trailers = HTTPHeaders([(SidecarHeaders.queryCost.rawName, (cost ?? .zero).header)])
        if cost?.estimated == true { trailers.add(name: SidecarHeaders.costEstimated.rawName, value: "true") }
        sink.sendEnd(trailers: trailers, abort: false)
    }

    /// The largest stream kept for the cache (bytes of event data).
    static let captureLimit = 4 << 20

    /// The trailers a priced stream announces (the second only when the cost is an estimate).
    static let trailerNames = "\(SidecarHeaders.queryCost.rawName), \(SidecarHeaders.costEstimated.rawName)"

    /// What an estimated usage chunk says, for a client that asked for usage.
    private static func usageFill(_ context: RequestContext) -> StreamRelay.UsageFill {
        StreamRelay.UsageFill(
            id: "chatcmpl-" + context.request.requestID,
            object: context.request.endpoint == .completions ? "text_completion" : "chat.completion.chunk",
            model: context.served?.model ?? "",
            promptTokens: Pricer.estimatedPromptTokens(context),
            created: Int(Date().timeIntervalSince1970)
        )
    }

    /// The client's response headers: the upstream's relayable ones plus the sidecar's own, as a
    /// list (made into `HTTPHeaders` at once: `add` checks each name for ASCII, about 0.1 us a field).
    static func headers(for context: RequestContext, upstreamHeaders: HTTPHeaders) -> [(String, String)] {
        var headers: [(String, String)] = []
        headers.reserveCapacity(upstreamHeaders.count + 11)
        for (name, value) in upstreamHeaders {
            if SidecarHeaders.isDropped(responseHeader: name) { continue }
            if name.caseInsensitiveEquals("x-request-id") {
                headers.append((SidecarHeaders.upstreamRequestID.rawName, value))
            } else {
                headers.append((name, value))
            }
        }
        let served = context.served
        switch context.decoded {
        case .completion?:
            headers.append((SidecarHeaders.modelUsed.rawName, served?.model ?? ""))
            headers.append((SidecarHeaders.upstream.rawName, served?.upstream ?? ""))
            headers.append(
                (SidecarHeaders.complexity.rawName, SidecarHeaders.complexityValue(context.score?.value ?? 0))
            )
            headers.append((SidecarHeaders.route.rawName, context.route?.routeLabel ?? ""))
            headers.append((SidecarHeaders.router.rawName, context.score?.router.rawValue ?? "heuristic"))
            headers.append((SidecarHeaders.cache.rawName, context.cacheStatus))
            if served?.fallbackFrom != nil { headers.append((SidecarHeaders.fallback.rawName, "true")) }
        case .embeddings?:
            headers.append((SidecarHeaders.modelUsed.rawName, served?.model ?? ""))
            headers.append((SidecarHeaders.upstream.rawName, served?.upstream ?? ""))
            headers.append((SidecarHeaders.cache.rawName, context.cacheStatus))
        case .passThrough?, nil:
            headers.append((SidecarHeaders.upstream.rawName, served?.upstream ?? ""))
        }
        if let spent = context.spentToday {
            headers.append((SidecarHeaders.app.rawName, context.app))
            headers.append((SidecarHeaders.spendToday.rawName, SpendLedger.dollarText(spent)))
        }
        headers.append((SidecarHeaders.requestID.rawName, context.request.requestID))
        return headers
    }
}
