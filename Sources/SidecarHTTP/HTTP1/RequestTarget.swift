/// Which request targets the listener accepts: plain origin-form paths, and nothing a client
/// could use to choose where the sidecar connects or to climb out of an upstream's base path.
///
/// The sidecar appends a client's path to the configured upstream's base path
/// (`/v1/files?limit=2` under `https://api.example.com/openai/v1`); the upstream's host and port
/// always come from the configuration. So a target is refused when it is
///
/// - not origin-form: absolute-form (`http://host/x`), authority-form (`host:443`, `CONNECT`'s),
///   asterisk-form (`*`), or anything else that does not start with one `/`;
/// - a path with an empty segment (`//host/x`, `/v1//x`) or a dot segment (`/v1/../x`, `/./x`);
/// - a path with a percent-encoded dot, slash, backslash or `@` (`%2e`, `%2f`, `%5c`, `%40`), a
///   percent-encoded control byte, or a `%` that does not start an escape;
/// - a path with a byte outside RFC 3986's `pchar` set (`@`, `\`, controls, spaces, non-ASCII...);
/// - a query with a control byte, space, backslash, `#` or a non-ASCII byte.
///
/// ```swift
/// RequestTarget.problem("/v1/chat/completions")   // nil: accepted
/// RequestTarget.problem("/v1/../admin")           // "the path has a dot segment (. or ..)"
/// ```
package enum RequestTarget {
    /// Why `target` is refused, or `nil` when it is a safe origin-form path (with its query).
    package static func problem(_ target: String) -> String? {
        var target = target
        return target.withUTF8 { Self.problem(bytes: $0) }
    }

    private static func problem(bytes: UnsafeBufferPointer<UInt8>) -> String? {
        guard let first = bytes.first else { return "the request target is empty" }
        guard first == UInt8(ascii: "/") else {
            return "the request target must be a path starting with \"/\" (origin-form), not an absolute URL, "
                + "an authority or \"*\""
        }
        let queryStart = bytes.firstIndex(of: UInt8(ascii: "?")) ?? bytes.endIndex
        var segmentStart = 0
        var index = 0
        while index < queryStart {
            let byte = bytes[index]
            if byte == UInt8(ascii: "/") {
                if let problem = Self.segmentProblem(bytes, from: segmentStart, to: index, isLast: false) {
                    return problem
                }
                segmentStart = index + 1
                index += 1
                continue
            }
            if byte == UInt8(ascii: "%") {
                guard index + 2 < queryStart, let high = Self.hexValue(bytes[index + 1]),
                    let low = Self.hexValue(bytes[index + 2])
                else { return "the path has a \"%\" that does not start a percent-encoded byte" }
                let decoded = high << 4 | low
                switch decoded {
                case UInt8(ascii: "."), UInt8(ascii: "/"), UInt8(ascii: "\\"), UInt8(ascii: "@"):
                    return "the path has a percent-encoded dot, slash, backslash or \"@\""
                case 0..<0x20, 0x7F:
                    return "the path has a percent-encoded control byte"
                default:
                    index += 3
                    continue
                }
            }
            guard Self.isPathByte(byte) else {
                return Self.describe(byte, in: "path")
            }
            index += 1
        }
        if let problem = Self.segmentProblem(bytes, from: segmentStart, to: queryStart, isLast: true) {
            return problem
        }
        var queryIndex = queryStart
        while queryIndex < bytes.endIndex {
            let byte = bytes[queryIndex]
            if byte <= 0x20 || byte >= 0x7F || byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "#") {
                return Self.describe(byte, in: "query")
            }
            queryIndex += 1
        }
        return nil
    }

    /// The segment `bytes[from..<to]`: empty (`//`) or a dot segment (`.`, `..`) is refused. The
    /// last segment may be empty (a trailing slash, or the root path `/`).
    private static func segmentProblem(
        _ bytes: UnsafeBufferPointer<UInt8>,
        from start: Int,
        to end: Int,
        isLast: Bool
    ) -> String? {
        // The first "/" opens the first segment; there is no segment before it.
        guard start > 0 else { return nil }
        switch end - start {
        case 0:
            return isLast ? nil : "the path has an empty segment (\"//\")"
        case 1 where bytes[start] == UInt8(ascii: "."),
            2 where bytes[start] == UInt8(ascii: ".") && bytes[start + 1] == UInt8(ascii: "."):
            return "the path has a dot segment (\".\" or \"..\")"
        default:
            return nil
        }
    }

    /// RFC 3986 `pchar` without `%` (handled apart) and without `@`: unreserved, sub-delims, ":".
    private static func isPathByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("),
            UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"),
            UInt8(ascii: "="), UInt8(ascii: ":"):
            return true
        default:
            return false
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static func describe(_ byte: UInt8, in part: String) -> String {
        switch byte {
        case UInt8(ascii: "@"): return "the \(part) has an \"@\""
        case UInt8(ascii: "\\"): return "the \(part) has a backslash"
        case 0..<0x20, 0x7F: return "the \(part) has a control byte"
        case 0x20: return "the \(part) has a space"
        case 0x80...: return "the \(part) has a byte that is not ASCII (percent-encode it)"
        default: return "the \(part) has a \"\(Character(Unicode.Scalar(byte)))\" (percent-encode it)"
        }
    }
}
