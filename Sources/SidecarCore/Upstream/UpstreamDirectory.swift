import HTTPTypes
import SidecarHTTP

/// The configured upstreams, resolved for sending: URL prefixes and the credentials to inject.
///
/// Built once per configuration; the environment is passed in (only the executable reads it).
public struct UpstreamDirectory: Sendable {
    /// One upstream, ready to address.
    public struct Entry: Sendable {
        public var name: String
        /// `base_url` without a trailing slash, e.g. `http://127.0.0.1:11434/v1`.
        public var baseURL: String
        /// The server root (base URL minus a trailing `/v1`), for Ollama's native `/api/*`.
        public var rootURL: String
        /// `Bearer <key>` from the environment variable the config names, if set.
        public var authorization: String?
        public var passClientAuthorization: Bool
        /// The config names a key variable that is unset or empty.
        public var missingKeyVariable: String?
        /// Where to connect; `nil` when `base_url` is not an http(s) URL (requests fail 502).
        var endpoint: UpstreamEndpoint?
        /// The path of `base_url` (e.g. `/v1`) and of the server root (e.g. ``), no trailing slash.
        var basePath: String
        var rootPath: String
    }

    private let entries: [String: Entry]
    public let names: [String]

    public init(configuration: SidecarConfiguration, environment: [String: String]) {
        var entries: [String: Entry] = [:]
        for upstream in configuration.upstreams {
            var base = upstream.baseURL
            while base.hasSuffix("/") { base.removeLast() }
            let root = base.hasSuffix("/v1") ? String(base.dropLast(3)) : base
            let parsed = UpstreamEndpoint.parse(base)
            var authorization: String?
            var missing: String?
            if !upstream.apiKeyEnv.isEmpty {
                if let key = environment[upstream.apiKeyEnv], !key.isEmpty {
                    authorization = "Bearer \(key)"
                } else {
                    missing = upstream.apiKeyEnv
                }
            }
            entries[upstream.name] = Entry(
                name: upstream.name,
                baseURL: base,
                rootURL: root,
                authorization: authorization,
                passClientAuthorization: upstream.passClientAuthorization,
                missingKeyVariable: missing,
                endpoint: parsed?.endpoint,
                basePath: parsed?.path ?? "",
                rootPath: parsed.map { $0.path.hasSuffix("/v1") ? String($0.path.dropLast(3)) : $0.path } ?? ""
            )
        }
        self.entries = entries
        self.names = configuration.upstreams.map(\.name)
    }

    public func entry(_ name: String) -> Entry? {
        self.entries[name]
    }
}
