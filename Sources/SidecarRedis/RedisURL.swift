/// Where a Redis server is and how to log in to it, parsed from a URL.
///
/// Two forms are understood:
///
/// - `redis://[[user]:password@]host[:port][/db]`, for example `redis://127.0.0.1`,
///   `redis://:s3cr%40t@cache.internal:6380/2` or `redis://sidecar:pw@[::1]/1`. The port defaults
///   to 6379 and the database to 0.
/// - `unix:///path/to/redis.sock[?db=N]`, with `password` and `user` also accepted as query
///   parameters.
///
/// The user name, the password and the socket path are percent-decoded, so a password holding
/// `@`, `:` or `/` is written `%40`, `%3A`, `%2F`. TLS (`rediss://`) is not supported.
///
/// ``description`` never shows the password, so a `RedisURL` can be logged.
package struct RedisURL: Sendable, Hashable, CustomStringConvertible {
    /// The server's address.
    package enum Endpoint: Sendable, Hashable {
        /// A TCP host (a name, an IPv4 address or an IPv6 address without brackets) and port.
        case tcp(host: String, port: Int)
        /// The path of a Unix domain socket.
        case unixSocket(path: String)
    }

    /// The port used when a `redis://` URL names none.
    package static let defaultPort = 6379

    /// The server's address.
    package var endpoint: Endpoint
    /// The ACL user for `AUTH user password`; `nil` for the plain `AUTH password`.
    package var username: String?
    /// The password sent with `AUTH` on each new connection; `nil` for no `AUTH`.
    package var password: String?
    /// The database selected with `SELECT` on each new connection (none is sent for 0).
    package var database: Int

    package init(endpoint: Endpoint, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses `string`.
    ///
    /// - Throws: ``RedisConfigurationError`` naming what is wrong with the URL.
    package init(parsing string: String) throws(RedisConfigurationError) {
        let lowercased = string.lowercased()
        if lowercased.hasPrefix("redis://") {
            self = try Self.parseTCP(String(string.dropFirst("redis://".count)), url: string)
        } else if lowercased.hasPrefix("unix://") {
            self = try Self.parseUnix(String(string.dropFirst("unix://".count)), url: string)
        } else if lowercased.hasPrefix("rediss://") {
            throw RedisConfigurationError("redis URL '\(Self.redacted(string))': TLS (rediss://) is not supported")
        } else {
            throw RedisConfigurationError(
                "redis URL '\(Self.redacted(string))' must start with redis:// or unix://"
            )
        }
    }

    package var description: String {
        var auth = ""
        if self.username != nil || self.password != nil {
            auth = "\(self.username ?? ""):\(self.password == nil ? "" : "***")@"
        }
        switch self.endpoint {
        case .tcp(let host, let port):
            let shownHost = host.contains(":") ? "[\(host)]" : host
            return "redis://\(auth)\(shownHost):\(port)/\(self.database)"
        case .unixSocket(let path):
            var query = "db=\(self.database)"
            if let username = self.username {
                query += "&user=\(username)"
            }
            if self.password != nil {
                query += "&password=***"
            }
            return "unix://\(path)?\(query)"
        }
    }

    private static func parseTCP(_ rest: String, url: String) throws(RedisConfigurationError) -> RedisURL {
        let shown = Self.redacted(url)
        var remainder = Substring(rest)
        var username: String?
        var password: String?
        // The last '@' ends the user info: the host and the database hold none.
        if let at = remainder.lastIndex(of: "@") {
            let userInfo = remainder[..<at]
            remainder = remainder[remainder.index(after: at)...]
            guard let colon = userInfo.firstIndex(of: ":") else {
                throw RedisConfigurationError(
                    "redis URL '\(shown)': the part before '@' must be ':password' or 'user:password'"
                )
            }
            let user = try Self.percentDecoded(userInfo[..<colon], what: "user name", url: shown)
            username = user.isEmpty ? nil : user
            password = try Self.percentDecoded(userInfo[userInfo.index(after: colon)...], what: "password", url: shown)
            if password?.isEmpty ?? true {
                throw RedisConfigurationError("redis URL '\(shown)': the password is empty")
            }
        }
        if remainder.contains("?") || remainder.contains("#") {
            throw RedisConfigurationError("redis URL '\(shown)': query parameters are not supported, use /db")
        }
        var hostAndPort = remainder
        var database = 0
        if let slash = remainder.firstIndex(of: "/") {
            hostAndPort = remainder[..<slash]
            let path = remainder[remainder.index(after: slash)...]
            if !path.isEmpty {
                database = try Self.database(path, url: shown)
            }
        }
        let (host, port) = try Self.hostAndPort(hostAndPort, url: shown)
        return RedisURL(
            endpoint: .tcp(host: host, port: port),
            username: username,
            password: password,
            database: database
        )
    }

    private static func hostAndPort(
        _ text: Substring,
        url: String
    ) throws(RedisConfigurationError) -> (String, Int) {
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw RedisConfigurationError("redis URL '\(url)': the IPv6 address has no closing ']'")
            }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else {
                    throw RedisConfigurationError("redis URL '\(url)': expected ':port' after ']'")
                }
                portText = after.dropFirst()
            }
        } else if let colon = text.firstIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = text
        }
        guard !host.isEmpty else {
            throw RedisConfigurationError("redis URL '\(url)': the host is empty")
        }
        var port = Self.defaultPort
        if let portText {
            guard let parsed = Int(portText), (1...65_535).contains(parsed), portText.allSatisfy(\.isASCII) else {
                throw RedisConfigurationError("redis URL '\(url)': the port '\(portText)' is not a number in 1...65535")
            }
            port = parsed
        }
        return (String(host), port)
    }

    private static func parseUnix(_ rest: String, url: String) throws(RedisConfigurationError) -> RedisURL {
        let shown = Self.redacted(url)
        var pathText = Substring(rest)
        var query: Substring = ""
        if let mark = pathText.firstIndex(of: "?") {
            query = pathText[pathText.index(after: mark)...]
            pathText = pathText[..<mark]
        }
        guard pathText.hasPrefix("/") else {
            throw RedisConfigurationError(
                "redis URL '\(shown)': a socket URL is unix:///absolute/path (three slashes, no host)"
            )
        }
        let path = try Self.percentDecoded(pathText, what: "socket path", url: shown)
        guard path.count > 1, !path.hasSuffix("/") else {
            throw RedisConfigurationError("redis URL '\(shown)': the socket path names no file")
        }
        var result = RedisURL(endpoint: .unixSocket(path: path))
        for item in query.split(separator: "&") {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let value = parts.count == 2 ? parts[1] : ""
            switch parts[0] {
            case "db":
                result.database = try Self.database(value, url: shown)
            case "password":
                result.password = try Self.percentDecoded(value, what: "password", url: shown)
                if result.password?.isEmpty ?? true {
                    throw RedisConfigurationError("redis URL '\(shown)': the password is empty")
                }
            case "user":
                let user = try Self.percentDecoded(value, what: "user name", url: shown)
                result.username = user.isEmpty ? nil : user
            default:
                throw RedisConfigurationError(
                    "redis URL '\(shown)': unknown query parameter '\(parts[0])' (known: db, password, user)"
                )
            }
        }
        return result
    }

    private static func database(_ text: Substring, url: String) throws(RedisConfigurationError) -> Int {
        guard let number = Int(text), number >= 0, number <= Int(Int32.max), text.allSatisfy(\.isASCII) else {
            throw RedisConfigurationError("redis URL '\(url)': the database '\(text)' is not a number 0 or more")
        }
        return number
    }

    /// Decodes `%XX` escapes; the result must be UTF-8.
    private static func percentDecoded(
        _ text: Substring,
        what: String,
        url: String
    ) throws(RedisConfigurationError) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue)
            else {
                throw RedisConfigurationError(
                    "redis URL '\(url)': the \(what) has a '%' not followed by two hex digits"
                )
            }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw RedisConfigurationError("redis URL '\(url)': the \(what) is not UTF-8 once percent-decoded")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// `url` with any password hidden, for error messages.
    private static func redacted(_ url: String) -> String {
        var text = url
        if let schemeEnd = text.firstRange(of: "://"), let at = text[schemeEnd.upperBound...].lastIndex(of: "@") {
            let userInfo = text[schemeEnd.upperBound..<at]
            if let colon = userInfo.firstIndex(of: ":") {
                text.replaceSubrange(text.index(after: colon)..<at, with: "***")
            }
        }
        if let range = text.firstRange(of: "password=") {
            let end = text[range.upperBound...].firstIndex(of: "&") ?? text.endIndex
            text.replaceSubrange(range.upperBound..<end, with: "***")
        }
        return text
    }
}
