import HTTPTypes
import SidecarHTTP

/// The configured upstreams, resolved for sending: URL prefixes and the credentials to inject.
///
/// Built once per configuration; the environment is passed in (only the executable reads it).
public struct UpstreamDirectory: Sendable {
    /// One upstream, ready to address. A reference: the request path looks one up per attempt
    /// and takes it with one retain rather than a copy of every field.
    public final class Entry: Sendable {
        public let name: String
        /// `base_url` without a trailing slash, e.g. `http://127.0.0.1:11434/v1`.
        public let baseURL: String
        /// The server root (base URL minus a trailing `/v1`), for Ollama's native `/api/*`.
        public let rootURL: String
        /// `Bearer <key>` from the key file or the environment variable the config names, if set.
        public let authorization: String?
        public let passClientAuthorization: Bool
        /// The config names a key variable that is unset or empty.
        public let missingKeyVariable: String?
        /// `base_url` is plain `http://` to a host that is not this machine's loopback: requests,
        /// answers and the key cross the network unencrypted (`llm-sidecar check` warns).
        public var isPlainHTTPBeyondLoopback: Bool {
            guard let endpoint = self.endpoint else { return false }
            return !endpoint.useTLS && !endpoint.isLoopback
        }
        /// Where to connect; `nil` when `base_url` is not an http(s) URL (requests fail 502).
        let endpoint: UpstreamEndpoint?
        /// The path of `base_url` (e.g. `/v1`) and of the server root (e.g. ``), no trailing slash.
        let basePath: String
        let rootPath: String

        init(
            name: String,
            baseURL: String,
            rootURL: String,
            authorization: String?,
            passClientAuthorization: Bool,
            missingKeyVariable: String?,
            endpoint: UpstreamEndpoint?,
            basePath: String,
            rootPath: String
        ) {
            self.name = name
            self.baseURL = baseURL
            self.rootURL = rootURL
            self.authorization = authorization
            self.passClientAuthorization = passClientAuthorization
            self.missingKeyVariable = missingKeyVariable
            self.endpoint = endpoint
            self.basePath = basePath
            self.rootPath = rootPath
        }
    }

    private let entries: [String: Entry]
    public let names: [String]
    /// Upstreams that get the client's own `Authorization` (`pass_client_authorization`).
    public let passingClientAuthorization: Set<String>

    /// Takes the upstreams' keys out of failed answers and errors before the client reads them.
    let redactor: SecretRedactor
    /// What a one-off probe (`llm-sidecar check`) asks of its pools: each upstream's `http2` and
    /// `max_connecting`, no warm connections.
    let probeSettings: [(endpoint: UpstreamEndpoint, settings: UpstreamEndpointSettings)]

    public init(configuration: SidecarConfiguration, environment: [String: String]) {
        var entries: [String: Entry] = [:]
        var keys: [String] = []
        for upstream in configuration.upstreams {
            var base = upstream.baseURL
            while base.hasSuffix("/") { base.removeLast() }
            let root = base.hasSuffix("/v1") ? String(base.dropLast(3)) : base
            var parsed = UpstreamEndpoint.parse(base)
            parsed?.endpoint.trust = upstream.trust
            var authorization: String?
            var missing: String?
            if let key = upstream.apiKeyFromFile {
                authorization = "Bearer \(key.value)"
                keys.append(key.value)
            } else if !upstream.apiKeyEnv.isEmpty {
                if let key = environment[upstream.apiKeyEnv], !key.isEmpty {
                    authorization = "Bearer \(key)"
                    keys.append(key)
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
        self.probeSettings = configuration.upstreams.compactMap { upstream in
            entries[upstream.name]?.endpoint.map {
                ($0, UpstreamEndpointSettings(maxConnecting: upstream.maxConnecting, http2: upstream.http2))
            }
        }
        self.redactor = SecretRedactor(secrets: keys)
        self.names = configuration.upstreams.map(\.name)
        self.passingClientAuthorization = Set(configuration.upstreams.filter(\.passClientAuthorization).map(\.name))
    }

    /// What each upstream asks of the connection pools (`warm_connections`, `max_connecting`, `http2`),
    /// by endpoint (for an endpoint several upstreams name, the pools keep the most warm
    /// connections and the tightest cap).
    package func endpointSettings(
        _ upstreams: [UpstreamConfiguration]
    ) -> [(endpoint: UpstreamEndpoint, settings: UpstreamEndpointSettings)] {
        upstreams.compactMap { upstream in
            guard let endpoint = self.entries[upstream.name]?.endpoint else { return nil }
            return (
                endpoint,
                UpstreamEndpointSettings(
                    warmConnections: upstream.warmConnections,
                    maxConnecting: upstream.maxConnecting,
                    http2: upstream.http2
                )
            )
        }
    }

    public func entry(_ name: String) -> Entry? {
        self.entries[name]
    }
}
