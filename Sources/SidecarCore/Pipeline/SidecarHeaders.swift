import HTTPTypes
import NIOHTTP1
import SidecarHTTP

/// Header names the sidecar reads and writes.
public enum SidecarHeaders {
    public static let modelUsed = constant("X-Model-Used")
    public static let queryCost = constant("X-Query-Cost")
    /// `true` when `X-Query-Cost` was priced from estimated token counts (no usage upstream).
    public static let costEstimated = constant("X-Sidecar-Cost-Estimated")
    public static let cache = constant("X-Sidecar-Cache")
    /// Request: seconds to keep this answer in the cache (`0`: do not store it).
    public static let cacheTTL = constant("X-Sidecar-Cache-TTL")
    /// Request: a namespace that keeps these entries apart from every other.
    public static let cacheNamespace = constant("X-Sidecar-Cache-Namespace")
    public static let complexity = constant("X-Sidecar-Complexity")
    public static let upstream = constant("X-Sidecar-Upstream")
    public static let requestID = constant("X-Request-Id")
    public static let upstreamRequestID = constant("X-Upstream-Request-Id")
    public static let route = constant("X-Sidecar-Route")
    public static let fallback = constant("X-Sidecar-Fallback")
    /// Which scorer decided the route: `learned` or `heuristic`.
    public static let router = constant("X-Sidecar-Router")
    /// Request: the tier to use (its index or its model), whatever the score.
    public static let tier = constant("X-Sidecar-Tier")
    /// Request: the most the request may cost in US dollars (estimated before it is sent).
    public static let maxCost = constant("X-Sidecar-Max-Cost")
    /// Request: the app the request is attributed to (`default` without it); echoed on answers.
    public static let app = constant("X-Sidecar-App")
    /// The app's spend today (UTC) in US dollars before this request.
    public static let spendToday = constant("X-Sidecar-Spend-Today")
    public static let trailer = constant("Trailer")

    /// Hop-by-hop and framing headers never relayed in either direction (lower case).
    static let hopByHop: [String] = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "content-length", "host", "proxy-authorization",
    ]

    static func isHopByHop(_ name: String) -> Bool {
        // Compare only with the names of the same length (most header names match none).
        switch name.utf8.count {
        case 2: return name.caseInsensitiveEquals("te")
        case 4: return name.caseInsensitiveEquals("host")
        case 7: return name.caseInsensitiveEquals("trailer") || name.caseInsensitiveEquals("upgrade")
        case 10: return name.caseInsensitiveEquals("connection") || name.caseInsensitiveEquals("keep-alive")
        case 14: return name.caseInsensitiveEquals("content-length")
        case 16: return name.caseInsensitiveEquals("proxy-connection")
        case 17: return name.caseInsensitiveEquals("transfer-encoding")
        case 19: return name.caseInsensitiveEquals("proxy-authorization")
        default: return false
        }
    }

    /// Not relayed to the client: hop-by-hop and framing headers, `Date` and `Server`.
    static func isDropped(responseHeader name: String) -> Bool {
        isHopByHop(name) || name.caseInsensitiveEquals("date") || name.caseInsensitiveEquals("server")
    }

    /// Not forwarded upstream: hop-by-hop and framing headers, `Accept-Encoding` (the sidecar
    /// reads bodies), the client's `X-Request-Id` (the sidecar sends its own), `X-Sidecar-*`, and
    /// what tells of the network behind the client (`Forwarded`, `X-Forwarded-*`, `X-Real-IP`,
    /// `Via`): a cloud upstream has no need of the host's addresses or its proxies.
    static func isDropped(requestHeader name: String) -> Bool {
        let utf8 = name.utf8
        if utf8.count > 10 && utf8.prefix(10).elementsEqual("x-sidecar-".utf8, by: { $0 | 0x20 == $1 }) {
            return true
        }
        if utf8.count > 12 && utf8.prefix(12).elementsEqual("x-forwarded-".utf8, by: { $0 | 0x20 == $1 }) {
            return true
        }
        switch utf8.count {
        case 3: return name.caseInsensitiveEquals("via")
        case 9: return name.caseInsensitiveEquals("forwarded") || name.caseInsensitiveEquals("x-real-ip")
        case 12: return name.caseInsensitiveEquals("x-request-id")
        case 15: return name.caseInsensitiveEquals("accept-encoding")
        default: return isHopByHop(name)
        }
    }

    /// A header name from a constant token. Every constant above is a valid token (a test
    /// checks each one), so the fallback is never taken.
    private static func constant(_ name: String) -> HTTPField.Name {
        HTTPField.Name(name) ?? .contentType
    }

    /// Formats a score for `X-Sidecar-Complexity`: three decimals.
    static func complexityValue(_ score: Double) -> String {
        let clamped = score.isFinite ? min(max(score, 0), 1) : 0
        let thousandths = Int((clamped * 1000).rounded())
        // "d.ddd": five ASCII bytes, a small string (no allocation).
        return String(unsafeUninitializedCapacity: 5) { bytes in
            bytes[0] = UInt8(ascii: "0") + UInt8(thousandths / 1000)
            bytes[1] = UInt8(ascii: ".")
            bytes[2] = UInt8(ascii: "0") + UInt8(thousandths / 100 % 10)
            bytes[3] = UInt8(ascii: "0") + UInt8(thousandths / 10 % 10)
            bytes[4] = UInt8(ascii: "0") + UInt8(thousandths % 10)
            return 5
        }
    }
}

extension HTTPHeaders {
    /// The same fields as NIO headers (the hot path speaks NIO; the responder speaks HTTPTypes).
    init(_ fields: HTTPFields) {
        self.init()
        self.reserveCapacity(fields.count)
        for field in fields { self.add(name: field.name.rawName, value: field.value) }
    }
}

extension HTTPFields {
    /// The same headers as HTTPTypes fields; names that are not valid tokens are dropped.
    init(_ headers: HTTPHeaders) {
        self.init()
        self.reserveCapacity(headers.count)
        for (name, value) in headers {
            if let name = HTTPField.Name(name) { self.append(HTTPField(name: name, value: value)) }
        }
    }
}
