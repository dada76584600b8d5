/// How one upstream attempt failed, as far as the retry decision cares.
public enum RetryableFailure: Sendable, Hashable {
    /// The connection could not be established (DNS, refused, TLS handshake). Nothing was sent.
    case connectFailed
    /// The upstream did not start answering before the attempt timed out.
    case timedOutBeforeFirstByte
    /// The upstream answered with this HTTP status (before any byte reached the client).
    case status(Int)
    /// The attempt failed after the first byte was relayed to the client: never retryable,
    /// because the client already holds part of an answer.
    case failedAfterFirstByte
    /// Anything else (a bug, a cancelled request, a malformed response): not retried.
    case other

    /// A metric-label-safe name: `connect_failed`, `timeout`, `status_503`, `after_first_byte`, `other`.
    public var label: String {
        switch self {
        case .connectFailed: "connect_failed"
        case .timedOutBeforeFirstByte: "timeout"
        case .status(let code): (100...599).contains(code) ? "status_\(code)" : "status_invalid"
        case .failedAfterFirstByte: "after_first_byte"
        case .other: "other"
        }
    }
}
