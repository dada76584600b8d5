import HTTPTypes
import NIOCore
import NIOHTTP1

/// A client request as the pipeline sees it: which endpoint, its headers and buffered body.
public struct ProxyRequest: Sendable {
    /// The endpoint families the pipeline treats differently.
    public enum Endpoint: Sendable, Equatable {
        case chatCompletions
        case completions
        case embeddings
        /// Another `/v1/*` path, forwarded to the default upstream.
        case openAIPassthrough
        /// Ollama's native `/api/*`, forwarded to the Ollama upstream.
        case ollamaNative

        /// A label-safe name for metrics and logs.
        public var label: String {
            switch self {
            case .chatCompletions: return "chat_completions"
            case .completions: return "completions"
            case .embeddings: return "embeddings"
            case .openAIPassthrough: return "passthrough"
            case .ollamaNative: return "ollama_native"
            }
        }
    }

    public var endpoint: Endpoint
    public var method: HTTPRequest.Method
    /// Path and query as received, e.g. `/v1/chat/completions`.
    public var path: String
    public var headers: HTTPHeaders
    public var body: ByteBuffer
    public var requestID: String
    /// When the sidecar received the request.
    public var receivedAt: ContinuousClock.Instant

    public init(
        endpoint: Endpoint,
        method: HTTPRequest.Method,
        path: String,
        headers: HTTPHeaders,
        body: ByteBuffer,
        requestID: String,
        receivedAt: ContinuousClock.Instant = .now
    ) {
        self.endpoint = endpoint
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.requestID = requestID
        self.receivedAt = receivedAt
    }
}
