/// A failure to get a response from an upstream.
///
/// `shortDescription` is a fixed, label-safe string for metrics; `description` adds the
/// upstream name and what failed, for logs and the client's error message.
public struct UpstreamError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What failed; internal so callers match on the `is…` properties, not on cases.
    package enum Code: String, Sendable {
        case connectFailed = "connect_failed"
        case connectTimeout = "connect_timeout"
        case deadlineExceeded = "deadline_exceeded"
        case connectionClosed = "connection_closed"
        case responseTooLarge = "response_too_large"
        case unknownUpstream = "unknown_upstream"
        case cancelled
        case other
    }

    package let code: Code
    public let upstream: String
    public let detail: String

    package init(_ code: Code, upstream: String, detail: String) {
        self.code = code
        self.upstream = upstream
        self.detail = detail
    }

    public var shortDescription: String { self.code.rawValue }

    public var description: String { "upstream \"\(self.upstream)\": \(self.code.rawValue): \(self.detail)" }

    /// The request's own deadline ran out (504 rather than 502).
    public var isDeadline: Bool { self.code == .deadlineExceeded }

    /// The connection could not be opened (the request never reached the upstream).
    public var isConnectFailure: Bool { self.code == .connectFailed || self.code == .connectTimeout }

    public static func == (lhs: UpstreamError, rhs: UpstreamError) -> Bool {
        lhs.code == rhs.code && lhs.upstream == rhs.upstream
    }
}
