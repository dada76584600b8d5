import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Prometheus
import SidecarHTTP

/// The endpoints answered in a task rather than on the event loop: models, health, readiness,
/// metrics and the local embedder. Errors become OpenAI-shaped answers through ``ErrorResponse``.
public struct SidecarResponder: HTTPResponder {
    public typealias Context = BasicRequestContext

    /// The phases new requests run through (replaced on reload).
    let current: CurrentPhases
    var phases: RequestPhases { self.current.phases }
    let readiness: ReadinessState
    let prometheus: PrometheusCollectorRegistry?
    let logger: Logger

    public init(
        current: CurrentPhases,
        readiness: ReadinessState,
        prometheus: PrometheusCollectorRegistry?,
        logger: Logger
    ) {
        self.current = current
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
        switch ProxyRequest.Endpoint.classify(method: request.method, path: path) {
        case .models:
            return ModelsController.list(self.phases.runtime.configuration, requestID: requestID)
        case .embeddings:
            // Only requests for the local model reach the responder.
            return try await self.embedLocally(request, requestID: requestID)
        case .health:
            return HealthController.health()
        case .readiness:
            return HealthController.readiness(self.readiness, resilience: self.phases.resilience)
        case .metrics:
            let (inFlight, queued) = self.phases.admission.gate.counts
            self.phases.metrics.recordAdmission(inFlight: inFlight, queued: queued)
            return HealthController.metrics(self.prometheus)
        case .routeDryRun:
            return try await RoutingController(phases: self.phases).route(request, requestID: requestID)
        case .feedback:
            return try await RoutingController(phases: self.phases).feedback(request, requestID: requestID)
        case .stats:
            return try StatsController.statsResponse(self.phases, requestID: requestID)
        case .dashboard:
            return StatsController.dashboard(requestID: requestID)
        case .chatCompletions, .completions, .openAIPassthrough, .ollamaNative, .notFound:
            throw SidecarError.notFound(path)
        }
    }

    private func embedLocally(_ request: Request, requestID: String) async throws -> Response {
        let limit = self.phases.runtime.configuration.server.maxBodyBytes
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
            requestID: requestID,
            app: self.phases.runtime.apps.appOrDefault(HTTPHeaders(request.headers), path: request.uri.path)
        )
        return try await self.phases.embedLocally(proxyRequest).response
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
            return .bodyTooLarge(limit: self.phases.runtime.configuration.server.maxBodyBytes)
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
        self.phases.recorder.recordError(error)
        let (headers, body) = ErrorResponse.parts(error, requestID: requestID)
        return (HTTPFields(headers), body)
    }

    /// The client's `X-Request-Id` when it is a sane token, else a new random one.
    static func requestID(_ headers: HTTPFields) -> String {
        if let given = RequestIDGenerator.clientProvided(headers[SidecarHeaders.requestID]) { return given }
        var generator = RequestIDGenerator()
        return generator.next()
    }
}
