import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
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
        await self.respond(request, context: context, requestID: Self.requestID(request.headers))
    }

    /// The requests the connection handler does not forward on its event loop: models,
    /// health, readiness, metrics, the local embedder, unknown paths.
    func respond(_ request: Request, context: Context, requestID: String) async -> Response {
        do {
            return try await self.dispatch(request, requestID: requestID)
        } catch {
            return self.errorResponse(error, requestID: requestID)
        }
    }

    private func dispatch(_ request: Request, requestID: String) async throws -> Response {
        let path = request.uri.path
        let method = request.method
        switch (method, path) {
        case (.get, "/v1/models"):
            return ModelsController.list(self.pipeline.runtime.configuration, requestID: requestID)
        case (.post, "/v1/embeddings"):
            return try await self.embedLocally(request, requestID: requestID)
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

    private func embedLocally(_ request: Request, requestID: String) async throws -> Response {
        let limit = self.pipeline.runtime.configuration.server.maxBodyBytes
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw SidecarError.bodyTooLarge(limit: limit)
        }
        let proxyRequest = ProxyRequest(
            endpoint: .embeddings,
            method: request.method,
            path: request.uri.path,
            headers: HTTPHeaders(request.headers),
            body: body,
            requestID: requestID
        )
        return try await self.pipeline.embedLocally(proxyRequest).response
    }

    func errorResponse(_ error: any Error, requestID: String) -> Response {
        let sidecarError = SidecarError.mapped(error) ?? self.otherError(error, requestID: requestID)
        let (headers, body) = self.errorParts(sidecarError, requestID: requestID)
        return Response(status: sidecarError.status, headers: headers, body: .init(byteBuffer: body))
    }

    /// Errors that are neither the sidecar's nor an upstream's: Hummingbird's, cancellation, bugs.
    private func otherError(_ error: any Error, requestID: String) -> SidecarError {
        switch error {
        case let error as HTTPError where error.status == .contentTooLarge:
            return .bodyTooLarge(limit: self.pipeline.runtime.configuration.server.maxBodyBytes)
        case let error as HTTPError:
            return SidecarError(
                status: error.status,
                type: "invalid_request_error",
                code: "http_\(error.status.code)",
                message: error.body ?? error.status.reasonPhrase
            )
        case is CancellationError:
            // The request was cancelled (the client went away or the server is stopping).
            return SidecarError(
                status: .init(code: 499, reasonPhrase: "Client Closed Request"),
                type: "server_error",
                code: "request_cancelled",
                message: "The request was cancelled."
            )
        default:
            self.logger.error("unexpected error", metadata: ["request.id": "\(requestID)", "error": "\(error)"])
            return .internalError("The sidecar failed to handle the request.")
        }
    }

    /// Headers and body of an OpenAI-shaped error response (and its metric).
    func errorParts(_ error: SidecarError, requestID: String) -> (HTTPFields, ByteBuffer) {
        self.pipeline.metrics.recordError(code: error.code, status: error.status.code)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[SidecarHeaders.requestID] = requestID
        if let retryAfter = error.retryAfter {
            // Whole seconds, rounded up, at least 1.
            let seconds = retryAfter.components.seconds + (retryAfter.components.attoseconds > 0 ? 1 : 0)
            headers[.retryAfter] = String(max(1, seconds))
        }
        return (headers, error.body.encoded())
    }

    /// The client's `X-Request-Id` when it is a sane token, else a new random one.
    static func requestID(_ headers: HTTPFields) -> String {
        if let given = self.clientRequestID(headers) { return given }
        var generator = RequestIDGenerator()
        return generator.next()
    }

    /// The client's `X-Request-Id` when it is a sane token (printable ASCII, at most 128 bytes).
    static func clientRequestID(_ headers: HTTPFields) -> String? {
        self.saneRequestID(headers[SidecarHeaders.requestID])
    }

    static func clientRequestID(_ headers: HTTPHeaders) -> String? {
        self.saneRequestID(headers.first(name: "x-request-id"))
    }

    private static func saneRequestID(_ given: String?) -> String? {
        guard let given, !given.isEmpty, given.utf8.count <= 128, given.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return nil }
        return given
    }
}

/// 128-bit request ids (32 hex digits) from a wyrand generator seeded once from the system's
/// random source: one seed per connection instead of a `getrandom` call per request. Ids only
/// need to be unique, not secret.
struct RequestIDGenerator {
    private var state: UInt64

    init() {
        self.state = UInt64.random(in: .min ... .max)
    }

    private mutating func next64() -> UInt64 {
        self.state &+= 0xA076_1D64_78BD_642F
        let product = self.state.multipliedFullWidth(by: self.state ^ 0xE703_7ED1_A0B4_28DB)
        return product.high ^ product.low
    }

    mutating func next() -> String {
        let high = self.next64()
        let low = self.next64()
        return String(unsafeUninitializedCapacity: 32) { buffer in
            for index in 0..<16 {
                buffer[index] = Self.hexDigit(high >> UInt64(60 - 4 * index))
                buffer[16 + index] = Self.hexDigit(low >> UInt64(60 - 4 * index))
            }
            return 32
        }
    }

    /// The low four bits as a lower-case hex digit.
    private static func hexDigit(_ value: UInt64) -> UInt8 {
        let nibble = UInt8(truncatingIfNeeded: value & 0xF)
        return nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
