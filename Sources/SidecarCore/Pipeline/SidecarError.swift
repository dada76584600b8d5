import HTTPTypes
import SidecarHTTP
import SidecarOpenAI

/// An error the client sees, already in OpenAI's terms: HTTP status, `type`, `code`, message.
///
/// Failures become one of these (``SidecarError/mapped(_:)``), and one of these becomes an
/// OpenAI-shaped answer in one place, ``ErrorResponse``.
public struct SidecarError: Error, Sendable, Equatable, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let type: String
    public let code: String
    public let message: String
    /// Sent as `Retry-After` (whole seconds, rounded up) when set.
    public let retryAfter: Duration?

    public init(status: HTTPResponse.Status, type: String, code: String, message: String, retryAfter: Duration? = nil) {
        self.status = status
        self.type = type
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    public var description: String { "\(self.status.code) \(self.code): \(self.message)" }

    public var body: OpenAIErrorBody { OpenAIErrorBody(message: self.message, type: self.type, code: self.code) }

    /// 429: the app's daily budget is spent (until the next UTC day).
    static func budgetExceeded(app: String, budget: Double, spent: Double, retryAfter: Duration) -> SidecarError {
        SidecarError(
            status: .tooManyRequests,
            type: "insufficient_quota",
            code: "daily_budget_exceeded",
            message: "The app \"\(app)\" has spent $\(SpendLedger.dollarText(spent)) today, its daily budget is "
                + "$\(SpendLedger.dollarText(budget)) ([spend] budgets); it resets at 00:00 UTC.",
            retryAfter: retryAfter
        )
    }

    /// 401: `[[clients]]` are configured and the request carries no bearer token.
    static let missingClientToken = SidecarError(
        status: .unauthorized,
        type: "invalid_request_error",
        code: "missing_api_key",
        message: "You didn't provide a sidecar client token. Send one of the tokens configured in [[clients]] "
            + "as the bearer: Authorization: Bearer <token> (the OpenAI SDKs send their api_key this way)."
    )

    /// 401: the bearer token is none of the configured clients' (the token is never repeated).
    static let invalidClientToken = SidecarError(
        status: .unauthorized,
        type: "invalid_request_error",
        code: "invalid_api_key",
        message: "Incorrect sidecar client token provided. Use one of the tokens configured in [[clients]]."
    )

    /// 429: the app's requests or tokens per minute (`[limits]`) are used up for now.
    static func rateLimited(app: String, what: String, limit: Int, retryAfter: Duration) -> SidecarError {
        SidecarError(
            status: .tooManyRequests,
            type: what,
            code: "rate_limit_exceeded",
            message: "Rate limit reached for the app \"\(app)\": \(limit) \(what) per minute ([limits] "
                + "\(what)_per_minute). Please try again later.",
            retryAfter: retryAfter
        )
    }

    /// 503: every slot is busy and the queue is full (or the wait in it ran out).
    static func overloaded(inFlight: Int, queued: Bool) -> SidecarError {
        SidecarError(
            status: .serviceUnavailable,
            type: "server_error",
            code: "sidecar_overloaded",
            message: "The sidecar is answering its limit of \(inFlight) requests at once ([limits] max_in_flight) "
                + (queued ? "and this request waited its longest in the queue" : "and its queue is full")
                + "; please try again later.",
            retryAfter: .seconds(1)
        )
    }

    /// 431: the request line or headers exceed `[limits]`.
    static func headersTooLarge(_ limits: LimitsConfiguration) -> SidecarError {
        SidecarError(
            status: .requestHeaderFieldsTooLarge,
            type: "invalid_request_error",
            code: "request_headers_too_large",
            message: "The request's headers are larger than the sidecar accepts: at most \(limits.maxHeaders) "
                + "fields, \(limits.maxFieldBytes) bytes for the target or a field, \(limits.maxHeaderBytes) "
                + "bytes in all ([limits] max_headers, max_field_bytes, max_header_bytes)."
        )
    }

    /// 408: the request's head and body did not arrive in time.
    static func requestReadTimeout(_ limit: Duration) -> SidecarError {
        SidecarError(
            status: .requestTimeout,
            type: "invalid_request_error",
            code: "request_timeout",
            message: "The request did not arrive within \(Int(limit / .milliseconds(1))) ms "
                + "([limits] request_read_ms)."
        )
    }

    static func invalidJSON(_ detail: String) -> SidecarError {
        SidecarError(
            status: .badRequest,
            type: "invalid_request_error",
            code: "invalid_json",
            message: "We could not parse the JSON body of your request: \(detail)"
        )
    }

    static func invalidRequest(_ message: String, code: String = "invalid_request") -> SidecarError {
        SidecarError(status: .badRequest, type: "invalid_request_error", code: code, message: message)
    }

    /// 400: the request target is not a plain origin-form path (`RequestTarget` says why).
    static func invalidTarget(_ reason: String) -> SidecarError {
        .invalidRequest(
            "The sidecar only accepts plain paths such as /v1/chat/completions: \(reason).",
            code: "invalid_request_target"
        )
    }

    static func bodyTooLarge(limit: Int) -> SidecarError {
        SidecarError(
            status: .contentTooLarge,
            type: "invalid_request_error",
            code: "request_too_large",
            message: "Request body is larger than the sidecar's limit of \(limit) bytes (server.max_body_bytes)."
        )
    }

    static func notFound(_ path: String) -> SidecarError {
        SidecarError(
            status: .notFound,
            type: "invalid_request_error",
            code: "unknown_url",
            message: "Unknown path \(path)."
        )
    }

    static func upstream(_ error: UpstreamError, attempts: Int? = nil) -> SidecarError {
        let tries = attempts.map { " after \($0) attempt(s)" } ?? ""
        if error.isDeadline {
            return SidecarError(
                status: .gatewayTimeout,
                type: "timeout_error",
                code: "upstream_timeout",
                message: "Upstream \"\(error.upstream)\" did not answer before the request deadline: \(error.detail)"
            )
        }
        return SidecarError(
            status: .badGateway,
            type: "upstream_error",
            code: "upstream_\(error.shortDescription)",
            message: "Upstream \"\(error.upstream)\" failed\(tries): \(error.shortDescription): \(error.detail)"
        )
    }

    /// A sidecar or upstream error as the client sees it; `nil` for any other error.
    static func mapped(_ error: any Error) -> SidecarError? {
        switch error {
        case let error as SidecarError: return error
        case let error as UpstreamError: return .upstream(error)
        default: return nil
        }
    }

    static func internalError(_ detail: String) -> SidecarError {
        SidecarError(status: .internalServerError, type: "server_error", code: "internal_error", message: detail)
    }
}
