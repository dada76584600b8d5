import HTTPTypes
import NIOCore
import NIOHTTP1

/// A client request as the phases see it: which endpoint, its headers and buffered body.
public struct ProxyRequest: Sendable {
    /// Every endpoint the sidecar answers, from the one table that knows them
    /// (``classify(method:path:)``): the forwarded ones run through ``RequestLifecycle`` on the
    /// event loop, the others are answered by the responder.
    public enum Endpoint: Sendable, Equatable {
        case chatCompletions
        case completions
        case embeddings
        /// Another `/v1/*` path, forwarded to the default upstream.
        case openAIPassthrough
        /// Ollama's native `/api/*`, forwarded to the Ollama upstream.
        case ollamaNative
        /// `GET /v1/models`: the configured models and the routing alias.
        case models
        /// `GET|HEAD /healthz`.
        case health
        /// `GET|HEAD /readyz`.
        case readiness
        /// `GET /metrics`.
        case metrics
        /// `POST /sidecar/route`: the routing decision for a body, nothing forwarded.
        case routeDryRun
        /// `POST /sidecar/feedback` (a rating) and `GET /sidecar/feedback` (the report).
        case feedback
        /// `GET /sidecar/stats`: spend, savings, cache and routing figures as JSON.
        case stats
        /// `GET /sidecar/`: the dashboard page.
        case dashboard
        case notFound

        /// The endpoint for a method and a path (without its query).
        public static func classify(method: HTTPRequest.Method, path: String) -> Endpoint {
            if path.hasPrefix("/v1/") || path == "/v1" {
                switch (method, path) {
                case (.post, "/v1/chat/completions"): return .chatCompletions
                case (.post, "/v1/completions"): return .completions
                case (.post, "/v1/embeddings"): return .embeddings
                case (.get, "/v1/models"): return .models
                default: return .openAIPassthrough
                }
            }
            if path.hasPrefix("/api/") { return .ollamaNative }
            switch (method, path) {
            case (.get, "/healthz"), (.head, "/healthz"): return .health
            case (.get, "/readyz"), (.head, "/readyz"): return .readiness
            case (.get, "/metrics"): return .metrics
            case (.post, "/sidecar/route"): return .routeDryRun
            case (.post, "/sidecar/feedback"), (.get, "/sidecar/feedback"): return .feedback
            case (.get, "/sidecar/stats"): return .stats
            case (.get, "/sidecar/"), (.get, "/sidecar"): return .dashboard
            default: return .notFound
            }
        }

        /// Forwarded upstream on the event loop (``RequestLifecycle``).
        public var isForwarded: Bool {
            switch self {
            case .chatCompletions, .completions, .embeddings, .openAIPassthrough, .ollamaNative: return true
            case .models, .health, .readiness, .metrics, .routeDryRun, .feedback, .stats, .dashboard, .notFound:
                return false
            }
        }

        /// A label-safe name for metrics and logs.
        public var label: String {
            switch self {
            case .chatCompletions: return "chat_completions"
            case .completions: return "completions"
            case .embeddings: return "embeddings"
            case .openAIPassthrough: return "passthrough"
            case .ollamaNative: return "ollama_native"
            case .models: return "models"
            case .health: return "health"
            case .readiness: return "readiness"
            case .metrics: return "metrics"
            case .routeDryRun: return "route"
            case .feedback: return "feedback"
            case .stats: return "stats"
            case .dashboard: return "dashboard"
            case .notFound: return "not_found"
            }
        }
    }

    /// The fields, in one immutable box: a request is copied into each phase's context, the
    /// forwarding call and the log line, and a copy is then one reference count, not one per
    /// string, header list and buffer. A setter (tests use them) swaps in a new box.
    private final class Storage: Sendable {
        let fields: Fields

        init(_ fields: Fields) {
            self.fields = fields
        }
    }

    private struct Fields {
        var endpoint: Endpoint
        var method: HTTPRequest.Method
        var path: String
        var headers: HTTPHeaders
        var body: ByteBuffer
        var requestID: String
        var receivedAt: ContinuousClock.Instant
        var app: String
    }

    private var storage: Storage

    private mutating func change(_ change: (inout Fields) -> Void) {
        var fields = self.storage.fields
        change(&fields)
        self.storage = Storage(fields)
    }

    public var endpoint: Endpoint {
        get { self.storage.fields.endpoint }
        set { self.change { $0.endpoint = newValue } }
    }
    public var method: HTTPRequest.Method {
        get { self.storage.fields.method }
        set { self.change { $0.method = newValue } }
    }
    /// Path and query as received, e.g. `/v1/chat/completions`.
    public var path: String {
        get { self.storage.fields.path }
        set { self.change { $0.path = newValue } }
    }
    public var headers: HTTPHeaders {
        get { self.storage.fields.headers }
        set { self.change { $0.headers = newValue } }
    }
    public var body: ByteBuffer {
        get { self.storage.fields.body }
        set { self.change { $0.body = newValue } }
    }
    public var requestID: String {
        get { self.storage.fields.requestID }
        set { self.change { $0.requestID = newValue } }
    }
    /// When the sidecar received the request.
    public var receivedAt: ContinuousClock.Instant {
        get { self.storage.fields.receivedAt }
        set { self.change { $0.receivedAt = newValue } }
    }
    /// The app it is attributed to (its client token's, else its `X-Sidecar-App`, else `default`).
    public var app: String {
        get { self.storage.fields.app }
        set { self.change { $0.app = newValue } }
    }

    public init(
        endpoint: Endpoint,
        method: HTTPRequest.Method,
        path: String,
        headers: HTTPHeaders,
        body: ByteBuffer,
        requestID: String,
        receivedAt: ContinuousClock.Instant = .now,
        app: String = AppAttribution.defaultApp
    ) {
        self.storage = Storage(
            Fields(
                endpoint: endpoint,
                method: method,
                path: path,
                headers: headers,
                body: body,
                requestID: requestID,
                receivedAt: receivedAt,
                app: app
            )
        )
    }
}
