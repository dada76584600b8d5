import NIOHTTP1
import SidecarPolicy

/// Names the app a request comes from, and refuses requests without a valid client token.
///
/// With `[[clients]]` configured, every request except the `server.public_paths` must carry one
/// of their tokens as its bearer (`Authorization: Bearer <token>`), and the token names the app
/// (an `X-Sidecar-App` header is not believed then). Without `[[clients]]` the app is the
/// `X-Sidecar-App` header, else `default`.
///
/// Tokens are kept only as SHA-256 digests, and a presented token is compared with every
/// client's digest in constant time: how long a check takes says nothing about how much of a
/// token was right, nor which client's token came close.
public struct AppAttribution: Sendable {
    public static let defaultApp = "default"
    /// The longest app name taken from a header.
    static let maxNameBytes = 64

    /// Who a request comes from.
    public enum Identity: Sendable, Equatable {
        case app(String)
        /// No valid token: answer 401 with this error.
        case refused(SidecarError)
    }

    /// Compares two digests; ``constantTime`` unless a test watches the comparisons.
    public struct Comparator: Sendable {
        let equal: @Sendable ([UInt8], [UInt8]) -> Bool

        public init(_ equal: @escaping @Sendable ([UInt8], [UInt8]) -> Bool) {
            self.equal = equal
        }

        public static let constantTime = Comparator(ConstantTime.equal)
    }

    private let clients: [(digest: [UInt8], app: String)]
    private let publicPaths: [String]
    private let comparator: Comparator

    public init(
        clients: [ClientConfiguration],
        environment: [String: String],
        publicPaths: [String] = ServerConfiguration().publicPaths,
        comparator: Comparator = .constantTime
    ) {
        self.clients = clients.compactMap { client in
            guard let token = environment[client.tokenEnv], !token.isEmpty,
                let digest = CacheKey.sha256(Array(token.utf8))
            else { return nil }
            return (digest, client.app)
        }
        self.publicPaths = publicPaths
        self.comparator = comparator
    }

    /// Whether requests must carry a client token.
    public var requiresToken: Bool { !self.clients.isEmpty }

    /// Whether `path` (without its query) is answered without a token.
    public func isPublic(_ path: String) -> Bool {
        self.publicPaths.contains { $0 == path || ($0.hasSuffix("/") && path.hasPrefix($0)) }
    }

    /// The app of a request to `path`, or why it is refused.
    public func identify(_ headers: HTTPHeaders, path: String) -> Identity {
        guard self.requiresToken, !self.isPublic(path) else { return .app(self.app(headers)) }
        guard let token = Self.bearerToken(headers) else { return .refused(.missingClientToken) }
        guard let digest = CacheKey.sha256(Array(token.utf8)) else { return .refused(.invalidClientToken) }
        // Every client's digest is compared, whichever matches.
        var matched: String?
        for client in self.clients where self.comparator.equal(digest, client.digest) {
            matched = client.app
        }
        return matched.map { .app($0) } ?? .refused(.invalidClientToken)
    }

    /// The app of a request the dispatcher let through (``identify(_:path:)`` there refused the others).
    public func appOrDefault(_ headers: HTTPHeaders, path: String) -> String {
        if case .app(let app) = self.identify(headers, path: path) { return app }
        return Self.defaultApp
    }

    /// The app named by the request's `X-Sidecar-App` header, else `default`; only when no
    /// tokens are configured (with tokens, ``identify(_:path:)`` names the app).
    public func app(_ headers: HTTPHeaders) -> String {
        guard !self.requiresToken, let name = headers.first(name: SidecarHeaders.app.rawName), !name.isEmpty,
            name.utf8.count <= Self.maxNameBytes,
            name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return Self.defaultApp }
        return name
    }

    /// The token of `Authorization: Bearer <token>`.
    static func bearerToken(_ headers: HTTPHeaders) -> Substring? {
        guard let authorization = headers.first(name: "authorization") else { return nil }
        let bytes = authorization.utf8
        guard bytes.count > 7,
            bytes.prefix(7).elementsEqual("bearer ".utf8, by: { $0 | 0x20 == $1 })
        else { return nil }
        let token = authorization.dropFirst(7).drop { $0 == " " }
        return token.isEmpty ? nil : token
    }
}

/// Comparisons whose time depends only on the lengths compared.
public enum ConstantTime {
    /// Whether `a` and `b` are equal, looking at every byte (no early exit).
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices {
            difference |= a[index] ^ b[index]
        }
        return difference == 0
    }
}
