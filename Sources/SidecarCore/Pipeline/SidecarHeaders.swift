import HTTPTypes

/// Header names the sidecar reads and writes.
public enum SidecarHeaders {
    public static let modelUsed = constant("X-Model-Used")
    public static let queryCost = constant("X-Query-Cost")
    public static let cache = constant("X-Sidecar-Cache")
    public static let complexity = constant("X-Sidecar-Complexity")
    public static let upstream = constant("X-Sidecar-Upstream")
    public static let requestID = constant("X-Request-Id")
    public static let upstreamRequestID = constant("X-Upstream-Request-Id")
    public static let route = constant("X-Sidecar-Route")
    public static let fallback = constant("X-Sidecar-Fallback")
    public static let trailer = constant("Trailer")
    static let keepAlive = constant("Keep-Alive")
    static let proxyConnection = constant("Proxy-Connection")
    static let te = constant("TE")
    static let upgrade = constant("Upgrade")
    static let hostName = constant("Host")

    /// Hop-by-hop and framing headers never relayed in either direction.
    static let hopByHop: Set<HTTPField.Name> = [
        .connection, keepAlive, proxyConnection, te, trailer, .transferEncoding, upgrade, .contentLength,
        hostName, .proxyAuthorization,
    ]

    /// A header name from a constant token. Every constant above is a valid token (a test
    /// checks each one), so the fallback is never taken.
    private static func constant(_ name: String) -> HTTPField.Name {
        HTTPField.Name(name) ?? .contentType
    }

    /// Formats a score for `X-Sidecar-Complexity`: three decimals.
    static func complexityValue(_ score: Double) -> String {
        let clamped = score.isFinite ? min(max(score, 0), 1) : 0
        let thousandths = Int((clamped * 1000).rounded())
        let fraction = String(thousandths % 1000)
        return "\(thousandths / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }
}
