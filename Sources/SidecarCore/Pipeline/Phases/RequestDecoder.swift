import Foundation
import NIOCore
import NIOFoundationCompat
import SidecarOpenAI

/// A request as the decode phase read it.
enum DecodedRequest {
    /// Chat or legacy completions: the view, and member positions when the fast parser read it.
    case completion(OpenAIRequestView, layout: RequestBodyLayout?)
    /// Embeddings for a model an upstream serves.
    case embeddings(model: String)
    /// Other `/v1/*` paths (`native: false`) and Ollama's `/api/*` (`native: true`), unread.
    case passThrough(native: Bool)

    var completion: OpenAIRequestView? {
        if case .completion(let view, _) = self { return view }
        return nil
    }

    var isPassThrough: Bool {
        if case .passThrough = self { return true }
        return false
    }
}

/// Decode phase: validates the body and reads the OpenAI view (unknown fields stay in the
/// bytes). Throws ``SidecarError`` for bad input.
package struct RequestDecoder: Sendable {
    /// `embeddings.local_model`: answered in-process, not by this path ("" = none).
    let localEmbeddingModel: String
    /// `routing.ollama_upstream`, and whether it names a configured upstream.
    let ollamaUpstream: String
    let ollamaUpstreamConfigured: Bool
    /// `routing.ollama_admin`: Ollama's model-management endpoints are forwarded.
    var ollamaAdmin = false

    /// The decoded request, or `nil` when it is answered in-process (the local embedding model).
    func decode(_ request: ProxyRequest) throws -> DecodedRequest? {
        switch request.endpoint {
        case .chatCompletions, .completions:
            let (view, layout) = try Self.decodeWithLayout(request.body)
            return .completion(view, layout: layout)
        case .embeddings:
            let view = try Self.decode(request.body)
            if !self.localEmbeddingModel.isEmpty && view.model == self.localEmbeddingModel { return nil }
            return .embeddings(model: view.model ?? "")
        case .openAIPassthrough:
            return .passThrough(native: false)
        case .ollamaNative:
            guard self.ollamaUpstreamConfigured else {
                throw SidecarError(
                    status: .notFound,
                    type: "invalid_request_error",
                    code: "ollama_upstream_not_configured",
                    message: "No Ollama upstream is configured (routing.ollama_upstream = \"\(self.ollamaUpstream)\")."
                )
            }
            if !self.ollamaAdmin, Self.isOllamaAdmin(request.path) {
                throw SidecarError(
                    status: .forbidden,
                    type: "permission_error",
                    code: "ollama_admin_disabled",
                    message: "Ollama's model management (pull, push, create, copy, delete, blobs) is not "
                        + "forwarded; set routing.ollama_admin = true to allow it."
                )
            }
            return .passThrough(native: true)
        case .models, .health, .readiness, .metrics, .routeDryRun, .feedback, .stats, .dashboard, .notFound:
            return nil
        }
    }

    /// Ollama's endpoints that change the models the host has (path with or without a query).
    static func isOllamaAdmin(_ path: String) -> Bool {
        let bare = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        switch bare {
        case "/api/pull", "/api/push", "/api/create", "/api/copy", "/api/delete": return true
        default: return bare.hasPrefix("/api/blobs/")
        }
    }

    /// Validates the body and reads the view: the single-pass parser for the common case,
    /// `JSONDecoder` for anything it declines (and for the error message of a bad body).
    static func decode(_ body: ByteBuffer) throws -> OpenAIRequestView {
        try self.decodeWithLayout(body).view
    }

    /// ``decode(_:)`` plus the member positions when the fast parser read the body.
    package static func decodeWithLayout(
        _ body: ByteBuffer
    ) throws -> (view: OpenAIRequestView, layout: RequestBodyLayout?) {
        if let parsed = OpenAIRequestParser.parseWithLayout(body) { return (parsed.view, parsed.layout) }
        let view = try self.decodeSlowly(body)
        // JSONDecoder skips what it does not read, and reads the first of a repeated member
        // where the upstream most likely reads the last (OpenAIRequestParser+Validation).
        guard OpenAIRequestParser.isValidJSON(body) else {
            throw SidecarError.invalidJSON("the body is not valid JSON (RFC 8259)")
        }
        if let member = OpenAIRequestParser.repeatedMember(in: body) {
            throw SidecarError.invalidJSON("\(member) appears more than once")
        }
        return (view, nil)
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
