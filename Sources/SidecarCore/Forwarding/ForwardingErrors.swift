import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SidecarOpenAI
import SidecarPolicy

/// The wording of a forwarded request's failure: what the client reads when every candidate
/// failed, and how each failure is summarised in the "Tried in order" list.
enum ForwardingErrors {
    /// The error for the last failure, with every candidate's outcome appended when more than
    /// one was tried.
    static func final(
        _ failure: ForwardingStateMachine.Failure?,
        breakerWait: Duration?,
        attempts: Int,
        tried: [String]
    ) -> SidecarError {
        let error = self.error(failure, breakerWait: breakerWait, attempts: attempts)
        guard tried.count > 1 else { return error }
        return SidecarError(
            status: error.status,
            type: error.type,
            code: error.code,
            message: error.message + (error.message.hasSuffix(".") ? " " : ". ") + "Tried in order: "
                + tried.joined(separator: "; ") + ".",
            retryAfter: error.retryAfter
        )
    }

    private static func error(
        _ failure: ForwardingStateMachine.Failure?,
        breakerWait: Duration?,
        attempts: Int
    ) -> SidecarError {
        switch failure {
        case .error(let error)?:
            return .upstream(error, attempts: attempts)
        case .status(let code, let message, let retryAfter, let upstream)? where code == 429:
            return SidecarError(
                status: .tooManyRequests,
                type: "rate_limit_error",
                code: "upstream_rate_limited",
                message: "Upstream \"\(upstream)\" is rate limiting after \(attempts) attempt(s): \(message)",
                retryAfter: retryAfter
            )
        case .status(let code, let message, _, let upstream)?:
            return SidecarError(
                status: .badGateway,
                type: "upstream_error",
                code: "upstream_status_\(code)",
                message: "Upstream \"\(upstream)\" answered \(code) after \(attempts) attempt(s): \(message)"
            )
        case nil:
            return SidecarError(
                status: .serviceUnavailable,
                type: "upstream_error",
                code: "upstreams_unavailable",
                message: "Every upstream for this request has its circuit breaker open; try again later.",
                retryAfter: breakerWait
            )
        }
    }

    /// One candidate's outcome for the "Tried in order" list.
    static func describe(_ failure: ForwardingStateMachine.Failure?) -> String {
        switch failure {
        case .error(let error)?: return "\(error.upstream) \(error.shortDescription)"
        case .status(let code, _, _, let upstream)?: return "\(upstream) answered \(code)"
        case nil: return "circuit breaker open"
        }
    }

    /// The message of an OpenAI-shaped error body, else the body's start: on one line and at most
    /// 240 characters (an upstream's message can hold a traceback with its file paths).
    static func message(fromErrorBody body: ByteBuffer) -> String {
        guard body.readableBytes > 0 else { return "" }
        let message =
            (try? JSONDecoder().decode(OpenAIErrorBody.self, from: body))?.error.message ?? String(buffer: body)
        let line = message.split(whereSeparator: \.isNewline).joined(separator: " ")
        return line.count > 240 ? line.prefix(240) + "..." : line
    }

    /// `retry-after-ms` (OpenAI's, milliseconds) first, else `Retry-After` (seconds or date).
    static func retryAfter(_ headers: HTTPHeaders, now: Date) -> Duration? {
        if let value = headers.first(name: "retry-after-ms"), let duration = RetryAfter.parseMilliseconds(value) {
            return duration
        }
        return headers.first(name: "retry-after").flatMap { RetryAfter.parse($0, now: now) }
    }
}
