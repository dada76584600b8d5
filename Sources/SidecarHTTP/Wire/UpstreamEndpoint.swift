import NIOCore
import NIOHTTP1

/// Scheme, host and port of an upstream, and for TLS the roots its certificate must chain to;
/// parsed from a base URL like "https://api.openai.com/v1" or "http://127.0.0.1:11434/v1/".
package struct UpstreamEndpoint: Hashable, Sendable {
    /// Host name or IP literal (IPv6 without brackets), lower-cased.
    package var host: String
    package var port: Int
    package var useTLS: Bool
    /// The certificate authorities a TLS server must chain to; `nil`: the system's roots. Part of
    /// the endpoint's identity: connections verified against other roots are not shared.
    package var trust: UpstreamTrust?

    package init(host: String, port: Int, useTLS: Bool, trust: UpstreamTrust? = nil) {
        self.host = host
        self.port = port
        self.useTLS = useTLS
        self.trust = trust
    }

    /// Returns the endpoint and the URL's path (without trailing slash, "" when none), nil for anything that is not
    /// http/https with a host. Default ports 80/443. IPv6 literals in brackets supported.
    package static func parse(_ url: String) -> (endpoint: UpstreamEndpoint, path: String)? {
        let useTLS: Bool
        var rest: Substring
        let trimmed = url.utf8.count > 0 ? Substring(url) : Substring("")
        if trimmed.utf8.count >= 8, trimmed.prefix(8).lowercased() == "https://" {
            useTLS = true
            rest = trimmed.dropFirst(8)
        } else if trimmed.utf8.count >= 7, trimmed.prefix(7).lowercased() == "http://" {
            useTLS = false
            rest = trimmed.dropFirst(7)
        } else {
            return nil
        }
        // Authority ends at the first "/", "?" or "#".
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        var authority = rest[rest.startIndex..<authorityEnd]
        rest = rest[authorityEnd...]
        if let at = authority.lastIndex(of: "@") {
            authority = authority[authority.index(after: at)...]
        }
        var host: Substring
        var portText: Substring = ""
        if authority.first == "[" {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let afterBracket = authority[authority.index(after: close)...]
            if !afterBracket.isEmpty {
                guard afterBracket.first == ":" else { return nil }
                portText = afterBracket.dropFirst()
            }
            guard !host.isEmpty, host.contains(":"), host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." })
            else { return nil }
        } else {
            if let colon = authority.firstIndex(of: ":") {
                host = authority[authority.startIndex..<colon]
                portText = authority[authority.index(after: colon)...]
            } else {
                host = authority
            }
            guard !host.isEmpty,
                host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" || $0 == "%" })
            else { return nil }
        }
        var port = useTLS ? 443 : 80
        if !portText.isEmpty {
            guard portText.utf8.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = Int(portText), value > 0, value <= 65535
            else { return nil }
            port = value
        }
        // Path: up to "?" or "#", without trailing slashes.
        let pathEnd = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) ?? rest.endIndex
        var path = rest[rest.startIndex..<pathEnd]
        while path.last == "/" {
            path = path.dropLast()
        }
        return (UpstreamEndpoint(host: host.lowercased(), port: port, useTLS: useTLS), String(path))
    }

    /// True when `host` is an IPv4 or IPv6 literal (no SNI is sent for those).
    package var isIPLiteral: Bool {
        if self.host.contains(":") { return true }
        let parts = self.host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4
            && parts.allSatisfy { part in
                !part.isEmpty && part.utf8.count <= 3 && part.allSatisfy { $0.isASCII && $0.isNumber }
                    && (Int(part) ?? 256) <= 255
            }
    }

    /// True when the host is this machine's loopback: `localhost`, 127.0.0.0/8, `::1` (or
    /// `::ffff:127.x.y.z`). Anything else, other names of this machine included, is not.
    package var isLoopback: Bool {
        if self.host == "localhost" || self.host == "localhost." { return true }
        guard self.isIPLiteral, let address = try? SocketAddress(ipAddress: self.host, port: 0) else { return false }
        switch address {
        case .v4(let v4):
            // s_addr is in network byte order: its first byte in memory is the first octet.
            return withUnsafeBytes(of: v4.address.sin_addr.s_addr) { $0.first } == 127
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            guard bytes.count == 16 else { return false }
            let loopback = bytes[0..<15].allSatisfy { $0 == 0 } && bytes[15] == 1
            let mappedLoopback =
                bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
                && bytes[12] == 127
            return loopback || mappedLoopback
        case .unixDomainSocket:
            return false
        }
    }

    /// Value for the Host header ("host" or "host:port" when the port is not the scheme default).
    package var hostHeader: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        if self.port == (self.useTLS ? 443 : 80) {
            return host
        }
        return "\(host):\(self.port)"
    }

    /// "host:port" for error messages.
    package var displayAddress: String {
        self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }
}

package struct UpstreamWireRequest {
    package var endpoint: UpstreamEndpoint
    package var method: HTTPMethod
    /// Path + query, e.g. "/v1/chat/completions".
    package var uri: String
    /// Caller's headers; the pool sets Host and Content-Length (or removes Content-Length for no body) and never adds
    /// Connection: close.
    package var headers: HTTPHeaders
    package var body: ByteBuffer?
    /// For error messages.
    package var upstreamName: String

    package init(
        endpoint: UpstreamEndpoint,
        method: HTTPMethod,
        uri: String,
        headers: HTTPHeaders,
        body: ByteBuffer?,
        upstreamName: String
    ) {
        self.endpoint = endpoint
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
        self.upstreamName = upstreamName
    }

    /// The head to send: the caller's headers with `host`, and the body's length (none without a
    /// body); never `transfer-encoding` (the body is whole).
    package func head(host: String) -> HTTPRequestHead {
        var head = HTTPRequestHead(version: .http1_1, method: self.method, uri: self.uri, headers: self.headers)
        head.headers.replaceOrAdd(name: "host", value: host)
        head.headers.remove(name: "transfer-encoding")
        if let body = self.body {
            head.headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
        } else {
            head.headers.remove(name: "content-length")
        }
        return head
    }
}

/// All calls happen on the pool's event loop, in order: head, zero or more body parts, then exactly one terminal call
/// (finish or fail). 1xx informational heads are skipped (never delivered).
package protocol UpstreamResponseDelegate: AnyObject {
    func upstreamDidReceiveHead(_ head: HTTPResponseHead)
    func upstreamDidReceiveBody(_ buffer: ByteBuffer)
    func upstreamDidFinish(trailers: HTTPHeaders?)
    func upstreamDidFail(_ error: UpstreamError)
}
