import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus

/// The sidecar's HTTP surface: dispatches by path and is the one boundary where every error
/// becomes an OpenAI-shaped response.
public struct SidecarResponder: HTTPResponder {
    public typealias Context = BasicRequestContext

    let pipeline: ProxyPipeline
    let readiness: ReadinessState
    let prometheus: PrometheusCollectorRegistry?
    let logger: Logger

    public init(
        pipeline: ProxyPipeline,
        readiness: ReadinessState,
        prometheus: PrometheusCollectorRegistry?,
        logger: Logger
    ) {
        self.pipeline = pipeline
        self.readiness = readiness
        self.prometheus = prometheus
        self.logger = logger
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        let requestID = Self.requestID(request.headers)
        do {
            return try await self.dispatch(request, requestID: requestID)
        } catch {
            return self.errorResponse(error, requestID: requestID)
        }
    }

    private func dispatch(_ request: Request, requestID: String) async throws -> Response {
        let path = request.uri.path
        let method = request.method
        if path.hasPrefix("/v1/") || path == "/v1" {
            switch (method, path) {
            case (.post, "/v1/chat/completions"):
                return try await self.proxy(request, endpoint: .chatCompletions, requestID: requestID)
            case (.post, "/v1/completions"):
                return try await self.proxy(request, endpoint: .completions, requestID: requestID)
            case (.post, "/v1/embeddings"):
                return try await self.proxy(request, endpoint: .embeddings, requestID: requestID)
            case (.get, "/v1/models"):
                return ModelsController.list(self.pipeline.runtime.configuration, requestID: requestID)
            default:
                return try await self.proxy(request, endpoint: .openAIPassthrough, requestID: requestID)
            }
        }
        if path.hasPrefix("/api/") {
            return try await self.proxy(request, endpoint: .ollamaNative, requestID: requestID)
        }
        switch (method, path) {
        case (.get, "/healthz"), (.head, "/healthz"):
            return HealthController.health()
        case (.get, "/readyz"), (.head, "/readyz"):
            return HealthController.readiness(self.readiness, pools: self.pipeline.pools)
        case (.get, "/metrics"):
            return HealthController.metrics(self.prometheus)
        default:
            throw SidecarError.notFound(path)
        }
    }

    private func proxy(_ request: Request, endpoint: ProxyRequest.Endpoint, requestID: String) async throws -> Response
    {
        let limit = self.pipeline.runtime.configuration.server.maxBodyBytes
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw SidecarError.bodyTooLarge(limit: limit)
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw SidecarError.bodyTooLarge(limit: limit)
        }
        let target = request.uri.query.map { "\(request.uri.path)?\($0)" } ?? request.uri.path
        let proxyRequest = ProxyRequest(
            endpoint: endpoint,
            method: request.method,
            path: target,
            headers: request.headers,
            body: body,
            requestID: requestID
        )
        return try await self.pipeline.handle(proxyRequest).response
    }

    func errorResponse(_ error: any Error, requestID: String) -> Response {
        let sidecarError: SidecarError
        switch error {
        case let error as SidecarError: sidecarError = error
        case let error as UpstreamError: sidecarError = .upstream(error)
        case let error as HTTPError where error.status == .contentTooLarge:
            sidecarError = .bodyTooLarge(limit: self.pipeline.runtime.configuration.server.maxBodyBytes)
        case let error as HTTPError:
            sidecarError = SidecarError(
                status: error.status,
                type: "invalid_request_error",
                code: "http_\(error.status.code)",
                message: error.body ?? error.status.reasonPhrase
            )
        case is CancellationError:
            // The request was cancelled (the client went away or the server is stopping).
            sidecarError = SidecarError(
                status: .init(code: 499, reasonPhrase: "Client Closed Request"),
                type: "server_error",
                code: "request_cancelled",
                message: "The request was cancelled."
            )
        default:
            self.logger.error("unexpected error", metadata: ["request.id": "\(requestID)", "error": "\(error)"])
            sidecarError = .internalError("The sidecar failed to handle the request.")
        }
        self.pipeline.metrics.recordError(code: sidecarError.code, status: sidecarError.status.code)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[SidecarHeaders.requestID] = requestID
        if let retryAfter = sidecarError.retryAfter {
            // Whole seconds, rounded up, at least 1.
            let seconds = retryAfter.components.seconds + (retryAfter.components.attoseconds > 0 ? 1 : 0)
            headers[.retryAfter] = String(max(1, seconds))
        }
        return Response(
            status: sidecarError.status,
            headers: headers,
            body: .init(byteBuffer: sidecarError.body.encoded())
        )
    }

    /// The client's `X-Request-Id` when it is a sane token, else a new random one.
    static func requestID(_ headers: HTTPFields) -> String {
        if let given = headers[SidecarHeaders.requestID], !given.isEmpty, given.utf8.count <= 128,
            given.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        {
            return given
        }
        let high = UInt64.random(in: .min ... .max)
        let low = UInt64.random(in: .min ... .max)
        return Self.hex(high) + Self.hex(low)
    }

    private static func hex(_ value: UInt64) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }
}
