import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// The one orchestrator: it knows the order of a request's stages and calls one injected
/// component per stage. No stage calls another.
///
/// ```
/// decode -> [cache lookup] -> score -> route -> rewrite -> upstream call -> relay
///        -> cost -> headers/trailer -> [cache store] -> metrics, access log
/// ```
///
/// The stages up to the upstream call are synchronous (``plan(_:)`` and
/// ``wireRequest(_:model:upstream:)``); the call, the retries and the relay run on the client
/// connection's event loop in a ``ForwardExchange``, which calls back into the pipeline for
/// headers, pricing and metrics.
public final class ProxyPipeline: Sendable {
    public let runtime: SidecarRuntime
    /// Breakers, retry budgets and balancers for this runtime's upstreams.
    public let pools: UpstreamPools
    let metrics: SidecarMetrics
    let logger: Logger
    /// `routing.pin_header`, lower-cased once for the request path's comparisons.
    let pinHeader: String

    public init(runtime: SidecarRuntime, metrics: SidecarMetrics, logger: Logger) {
        self.runtime = runtime
        self.pinHeader = runtime.configuration.routing.pinHeader.lowercased()
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
        self.metrics = metrics
        self.logger = logger
    }

    /// Decode, score and route: what to send where. `nil` when the request is answered
    /// in-process (the local embedding model) rather than forwarded.
    /// Throws ``SidecarError`` (client-shaped) for bad input.
    func plan(_ request: ProxyRequest) throws -> ForwardPlan? {
        let timeouts = self.runtime.configuration.timeouts
        let deadline = request.receivedAt + timeouts.request
        switch request.endpoint {
        case .chatCompletions, .completions:
            // Decode: validates the JSON; unknown fields stay in the bytes.
            let (view, layout) = try Self.decodeWithLayout(request.body)
            let score = self.runtime.scorer.score(Self.scoringInput(view))
            let decision = self.runtime.selector.select(
                requestedModel: view.model,
                pinHeader: Self.isPinned(request.headers, header: self.runtime.configuration.routing.pinHeader),
                score: score
            )
            let streaming = view.isStreaming
            let clientAskedForUsage = view.streamOptions?.includeUsage == true
            return ForwardPlan(
                request: request,
                kind: .generate(
                    .init(
                        score: score.value,
                        route: decision.reason.label,
                        requestedModel: view.model,
                        streaming: streaming,
                        clientAskedForUsage: clientAskedForUsage,
                        layout: layout
                    )
                ),
                candidates: self.candidates(for: decision),
                deadline: deadline,
                retryStatuses: true,
                readWholeBody: !streaming
            )
        case .embeddings:
            let view = try Self.decode(request.body)
            let local = self.runtime.configuration.embeddings.localModel
            if !local.isEmpty && view.model == local { return nil }
            let model = view.model ?? ""
            return ForwardPlan(
                request: request,
                kind: .embed(model: model),
                candidates: [UpstreamCandidate(model: model, upstream: self.runtime.selector.owner(of: view.model))],
                deadline: deadline,
                retryStatuses: true,
                readWholeBody: true
            )
        case .openAIPassthrough:
            return ForwardPlan(
                request: request,
                kind: .passThrough(native: false),
                candidates: [UpstreamCandidate(model: "", upstream: self.runtime.configuration.defaultUpstreamName)],
                deadline: deadline,
                // Not idempotent in general: retry connection failures only, never answered statuses.
                retryStatuses: false,
                readWholeBody: false
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
            return ForwardPlan(
                request: request,
                kind: .passThrough(native: true),
                candidates: [UpstreamCandidate(model: "", upstream: name)],
                deadline: deadline,
                retryStatuses: false,
                readWholeBody: false
            )
        }
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

    /// The local embedding model's answer (nothing is forwarded).
    func embedLocally(_ request: ProxyRequest) async throws -> ProxyOutcome {
        let local = self.runtime.configuration.embeddings.localModel
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

    /// Validates the body and reads the view: the single-pass parser for the common case,
    /// `JSONDecoder` for anything it declines (and for the error message of a bad body).
    static func decode(_ body: ByteBuffer) throws -> OpenAIRequestView {
        try self.decodeWithLayout(body).view
    }

    /// ``decode(_:)`` plus the member positions when the fast parser read the body.
    static func decodeWithLayout(_ body: ByteBuffer) throws -> (view: OpenAIRequestView, layout: RequestBodyLayout?) {
        if let parsed = OpenAIRequestParser.parseWithLayout(body) { return (parsed.view, parsed.layout) }
        return (try self.decodeSlowly(body), nil)
    }

    private static func decodeSlowly(_ body: ByteBuffer) throws -> OpenAIRequestView {
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

    static func isPinned(_ headers: HTTPHeaders, header: String) -> Bool {
        guard let value = headers.first(name: header) else { return false }
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
