import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOFoundationCompat

/// The one orchestrator: it knows the order of a request's stages and calls one injected
/// component per stage. No stage calls another.
///
/// ```
/// decode -> [cache lookup] -> score -> route -> rewrite -> upstream call -> relay
///        -> cost -> headers/trailer -> [cache store] -> metrics, access log
/// ```
///
/// ```swift
/// let pipeline = ProxyPipeline(runtime: runtime, upstream: client, metrics: metrics, logger: logger)
/// let outcome = try await pipeline.handle(request)
/// ```
public struct ProxyPipeline: Sendable {
    public let runtime: SidecarRuntime
    /// Breakers, retry budgets and balancers for this runtime's upstreams.
    public let pools: UpstreamPools
    let executor: UpstreamExecutor
    let metrics: SidecarMetrics
    let logger: Logger

    public init(runtime: SidecarRuntime, upstream: any UpstreamClient, metrics: SidecarMetrics, logger: Logger) {
        self.runtime = runtime
        self.pools = UpstreamPools(
            configuration: runtime.configuration,
            onTransition: { upstream, transition in
                metrics.recordBreakerTransition(upstream: upstream, to: transition.to)
                logger.warning(
                    "circuit breaker changed state",
                    metadata: [
                        "upstream.name": "\(upstream)", "breaker.from": "\(transition.from.label)",
                        "breaker.to": "\(transition.to.label)", "breaker.reason": "\(transition.reason.label)",
                    ]
                )
            }
        )
        self.executor = UpstreamExecutor(
            client: upstream,
            pools: self.pools,
            policy: runtime.configuration.resilience.retry,
            timeouts: runtime.configuration.timeouts,
            metrics: metrics,
            logger: logger
        )
        self.metrics = metrics
        self.logger = logger
    }

    /// Runs one request through the stages. Throws ``SidecarError`` (already client-shaped)
    /// or ``UpstreamError``; the responder maps both at its boundary.
    public func handle(_ request: ProxyRequest) async throws -> ProxyOutcome {
        switch request.endpoint {
        case .chatCompletions, .completions:
            return try await self.generate(request)
        case .embeddings:
            return try await self.embed(request)
        case .openAIPassthrough:
            return try await self.passThrough(
                request,
                upstream: self.runtime.configuration.defaultUpstreamName,
                native: false
            )
        case .ollamaNative:
            let name = self.runtime.configuration.routing.ollamaUpstream
            guard !name.isEmpty, self.runtime.directory.entry(name) != nil else {
                throw SidecarError(
                    status: .notFound,
                    type: "invalid_request_error",
                    code: "ollama_upstream_not_configured",
                    message: "No Ollama upstream is configured (routing.ollama_upstream = \"\(name)\")."
                )
            }
            return try await self.passThrough(request, upstream: name, native: true)
        }
    }

    /// Chat and legacy completions: scored, routed, rewritten, priced.
    func generate(_ request: ProxyRequest) async throws -> ProxyOutcome {
        // Decode: validates the JSON; unknown fields stay in the bytes.
        let view = try Self.decode(request.body)

        // Score and route.
        let score = self.runtime.scorer.score(Self.scoringInput(view))
        let decision = self.runtime.selector.select(
            requestedModel: view.model,
            pinHeader: Self.isPinned(request.headers, header: self.runtime.configuration.routing.pinHeader),
            score: score
        )

        // Upstream call: the chosen model, then its fallbacks, each with retries.
        let streaming = view.isStreaming
        let clientAskedForUsage = view.streamOptions?.includeUsage == true
        let execution = try await self.executor.execute(
            candidates: self.candidates(for: decision),
            deadline: request.receivedAt + self.runtime.configuration.timeouts.request,
            bufferLimit: streaming ? nil : self.runtime.configuration.server.maxResponseBytes,
            retryStatuses: true,
            requestID: request.requestID
        ) { model, upstream in
            // Rewrite: only `model`, plus usage for streams so every answer can be priced.
            guard
                let body = RequestBodyRewriter.rewrite(
                    request.body,
                    model: model == view.model ? nil : model,
                    includeUsage: streaming && !clientAskedForUsage
                )
            else {
                throw SidecarError.invalidRequest("The request body must be a JSON object.")
            }
            return try self.upstreamRequest(for: request, upstream: upstream, body: body, native: false)
        }

        // Relay, cost, headers.
        let response = execution.response
        var headers = self.responseHeaders(upstream: response.headers)
        headers[SidecarHeaders.modelUsed] = execution.model
        headers[SidecarHeaders.upstream] = execution.upstream
        headers[SidecarHeaders.complexity] = SidecarHeaders.complexityValue(score.value)
        headers[SidecarHeaders.route] = decision.reason.label
        headers[SidecarHeaders.cache] = "miss"
        headers[SidecarHeaders.requestID] = request.requestID
        if execution.usedFallback { headers[SidecarHeaders.fallback] = "true" }
        let context = RelayContext(request: request, model: execution.model, upstream: execution.upstream)
        if streaming && response.status.kind == .successful && Self.isEventStream(response.headers) {
            return self.relayStream(response, headers: headers, dropUsageChunk: !clientAskedForUsage, context: context)
        }
        return try await self.relayWhole(response, headers: headers, context: context)
    }

    /// The decision's model, then (for routed requests) its configured fallbacks.
    func candidates(for decision: RouteDecision) -> [UpstreamCandidate] {
        var candidates = [UpstreamCandidate(model: decision.model, upstream: decision.upstream)]
        guard case .tier = decision.reason, let model = self.runtime.configuration.model(named: decision.model) else {
            return candidates
        }
        for fallback in model.fallbacks where !candidates.contains(where: { $0.model == fallback }) {
            candidates.append(UpstreamCandidate(model: fallback, upstream: self.runtime.selector.owner(of: fallback)))
        }
        return candidates
    }

    /// Embeddings: forwarded to the upstream that owns the model, priced from `usage`.
    func embed(_ request: ProxyRequest) async throws -> ProxyOutcome {
        let view = try Self.decode(request.body)
        let local = self.runtime.configuration.embeddings.localModel
        if !local.isEmpty && view.model == local {
            guard let embedder = self.runtime.localEmbedder else {
                throw SidecarError(
                    status: .serviceUnavailable,
                    type: "server_error",
                    code: "local_embedder_unavailable",
                    message:
                        "The local embedding model \"\(local)\" is not installed (expected in \(self.runtime.configuration.embeddings.modelDirectory)); run scripts/install-model.sh."
                )
            }
            return try await self.embedLocally(request, embedder: embedder)
        }
        let model = view.model ?? ""
        let execution = try await self.executor.execute(
            candidates: [UpstreamCandidate(model: model, upstream: self.runtime.selector.owner(of: view.model))],
            deadline: request.receivedAt + self.runtime.configuration.timeouts.request,
            bufferLimit: self.runtime.configuration.server.maxResponseBytes,
            retryStatuses: true,
            requestID: request.requestID
        ) { _, upstream in
            try self.upstreamRequest(for: request, upstream: upstream, body: request.body, native: false)
        }
        let response = execution.response
        let upstreamName = execution.upstream
        var headers = self.responseHeaders(upstream: response.headers)
        headers[SidecarHeaders.modelUsed] = model
        headers[SidecarHeaders.upstream] = upstreamName
        headers[SidecarHeaders.cache] = "miss"
        headers[SidecarHeaders.requestID] = request.requestID
        let context = RelayContext(request: request, model: model, upstream: upstreamName)
        return try await self.relayWhole(response, headers: headers, context: context)
    }

    static func decode(_ body: ByteBuffer) throws -> OpenAIRequestView {
        do {
            return try JSONDecoder().decode(OpenAIRequestView.self, from: body)
        } catch let error as DecodingError {
            throw SidecarError.invalidJSON(Self.describe(error))
        } catch {
            throw SidecarError.invalidJSON("\(error)")
        }
    }

    static func scoringInput(_ view: OpenAIRequestView) -> ScoringInput {
        var messages: [ScoringInput.Message] = []
        if let chat = view.messages {
            messages.reserveCapacity(chat.count)
            for message in chat {
                messages.append(
                    .init(
                        role: message.role,
                        text: message.content?.text ?? "",
                        nonTextParts: message.content?.nonTextPartCount ?? 0
                    )
                )
            }
        } else if let prompt = view.prompt {
            messages.append(.init(role: "user", text: prompt.text))
        }
        return ScoringInput(messages: messages, toolCount: view.toolCount, maxTokens: view.maxTokens)
    }

    static func isPinned(_ headers: HTTPFields, header: String) -> Bool {
        guard let name = HTTPField.Name(header), let value = headers[name] else { return false }
        let lowered = value.lowercased()
        return !(lowered.isEmpty || lowered == "0" || lowered == "false" || lowered == "no")
    }

    static func isEventStream(_ headers: HTTPFields) -> Bool {
        headers[.contentType]?.lowercased().hasPrefix("text/event-stream") ?? false
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .dataCorrupted(let context):
            if let underlying = context.underlyingError { return "\(underlying)" }
            return context.debugDescription
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context):
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return "\(path.isEmpty ? "body" : String(path.drop { $0 == "." })): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
