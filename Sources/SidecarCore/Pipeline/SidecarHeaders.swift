import HTTPTypes

/// Header names the sidecar reads and writes.
public enum SidecarHeaders {
    public static let modelUsed = HTTPField.Name("X-Model-Used")!
    public static let queryCost = HTTPField.Name("X-Query-Cost")!
    public static let cache = HTTPField.Name("X-Sidecar-Cache")!
    public static let complexity = HTTPField.Name("X-Sidecar-Complexity")!
    public static let upstream = HTTPField.Name("X-Sidecar-Upstream")!
    public static let requestID = HTTPField.Name("X-Request-Id")!
    public static let upstreamRequestID = HTTPField.Name("X-Upstream-Request-Id")!
    public static let route = HTTPField.Name("X-Sidecar-Route")!
    public static let trailer = HTTPField.Name("Trailer")!
    static let keepAlive = HTTPField.Name("Keep-Alive")!
    static let proxyConnection = HTTPField.Name("Proxy-Connection")!
    static let te = HTTPField.Name("TE")!
    static let upgrade = HTTPField.Name("Upgrade")!
    static let hostName = HTTPField.Name("Host")!

    /// Hop-by-hop and framing headers never relayed in either direction.
    static let hopByHop: Set<HTTPField.Name> = [
        .connection, keepAlive, proxyConnection, te, trailer, .transferEncoding, upgrade, .contentLength,
        hostName, .proxyAuthorization,
    ]

    /// Formats a score for `X-Sidecar-Complexity`: three decimals.
    static func complexityValue(_ score: Double) -> String {
        let thousandths = Int((min(max(score, 0), 1) * 1000).rounded())
        let fraction = String(thousandths % 1000)
        return "\(thousandths / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }
}
