import Foundation
import SidecarEmbedding
import SidecarHTTP
import SidecarPolicy

/// The whole configuration of one sidecar process, as read from `sidecar.conf`.
///
/// Every field has the default documented in the repository's `sidecar.conf`; the embedded
/// defaults (``SidecarConfiguration/embeddedDefaultsTOML``) are that same file.
///
/// ```swift
/// let config = try SidecarConfiguration(toml: text, file: "sidecar.conf")
/// ```
public struct SidecarConfiguration: Sendable, Equatable {
    public var server: ServerConfiguration
    public var timeouts: TimeoutConfiguration
    public var upstreams: [UpstreamConfiguration]
    public var models: [ModelConfiguration]
    public var routing: RoutingConfiguration
    public var resilience: ResilienceConfiguration
    public var embeddings: EmbeddingConfiguration
    public var cache: CacheConfiguration
    public var clients: [ClientConfiguration]
    public var spend: SpendConfiguration
    public var limits: LimitsConfiguration

    public init(
        server: ServerConfiguration = .init(),
        timeouts: TimeoutConfiguration = .init(),
        upstreams: [UpstreamConfiguration] = [],
        models: [ModelConfiguration] = [],
        routing: RoutingConfiguration = .init(),
        resilience: ResilienceConfiguration = .init(),
        embeddings: EmbeddingConfiguration = .init(),
        cache: CacheConfiguration = .init(),
        clients: [ClientConfiguration] = [],
        spend: SpendConfiguration = .init(),
        limits: LimitsConfiguration = .init()
    ) {
        self.server = server
        self.timeouts = timeouts
        self.upstreams = upstreams
        self.models = models
        self.routing = routing
        self.resilience = resilience
        self.embeddings = embeddings
        self.cache = cache
        self.clients = clients
        self.spend = spend
        self.limits = limits
    }

    /// The upstream with this name, if configured.
    public func upstream(named name: String) -> UpstreamConfiguration? {
        self.upstreams.first { $0.name == name }
    }

    /// The model with this id, if configured.
    public func model(named name: String) -> ModelConfiguration? {
        self.models.first { $0.name == name }
    }
}

/// `[server]`: the listener.
public struct ServerConfiguration: Sendable, Equatable {
    /// Address the proxy listens on; loopback by default.
    public var listen: ListenAddress
    /// Largest request body accepted; larger bodies get 413.
    public var maxBodyBytes: Int
    /// Largest non-streamed upstream response body the sidecar reads to price it.
    public var maxResponseBytes: Int
    /// One JSON line per request on stderr.
    public var accessLog: Bool
    /// Paths answered without a client token when `[[clients]]` are configured (exact paths, or
    /// prefixes ending in `/`).
    public var publicPaths: [String]
    /// The permissions of a Unix socket listener (`listen = "unix:PATH"`).
    public var socketMode: UInt16

    public init(
        listen: ListenAddress = .init(host: "127.0.0.1", port: 8088),
        maxBodyBytes: Int = 16 * 1024 * 1024,
        maxResponseBytes: Int = 64 * 1024 * 1024,
        accessLog: Bool = false,
        publicPaths: [String] = ["/healthz", "/readyz"],
        socketMode: UInt16 = 0o660
    ) {
        self.listen = listen
        self.maxBodyBytes = maxBodyBytes
        self.maxResponseBytes = maxResponseBytes
        self.accessLog = accessLog
        self.publicPaths = publicPaths
        self.socketMode = socketMode
    }
}

/// `HOST:PORT` the server binds to, or `unix:PATH` for a Unix domain socket (no TCP port).
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// The Unix domain socket's path, for `unix:PATH`.
    public var socketPath: String?

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
        self.socketPath = nil
    }

    public init(socketPath: String) {
        self.host = ""
        self.port = 0
        self.socketPath = socketPath
    }

    /// Parses `HOST:PORT` (IPv6 hosts in brackets: `[::1]:8088`) or `unix:PATH`.
    public init?(parsing text: String) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            // sun_path holds 107 bytes and a NUL.
            guard !path.isEmpty, path.utf8.count < 108, !path.utf8.contains(0) else { return nil }
            self.init(socketPath: path)
            return
        }
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        }
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String {
        if let socketPath = self.socketPath { return "unix:\(socketPath)" }
        return self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }

    /// Whether only this host can connect: `localhost`, 127.0.0.0/8, `::1`, or a Unix socket.
    public var isLoopback: Bool {
        if self.socketPath != nil { return true }
        let host = self.host.lowercased()
        if host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }
}

/// `[timeouts]`: limits applied to every upstream call.
public struct TimeoutConfiguration: Sendable, Equatable {
    /// Time allowed to open a TCP (and TLS) connection to an upstream.
    public var connect: Duration
    /// Time allowed for one attempt to get the upstream's response head; past it the attempt
    /// fails and may be retried.
    public var firstByte: Duration
    /// Longest silence from an upstream connection: while waiting for the head and between
    /// stream chunks.
    public var idle: Duration
    /// Overall time allowed for one request, retries and streaming included.
    public var request: Duration

    public init(
        connect: Duration = .milliseconds(2000),
        firstByte: Duration = .seconds(120),
        idle: Duration = .seconds(120),
        request: Duration = .seconds(600)
    ) {
        self.connect = connect
        self.firstByte = firstByte
        self.idle = idle
        self.request = request
    }
}

/// `[[upstreams]]`: an OpenAI-compatible server the sidecar forwards to.
public struct UpstreamConfiguration: Sendable, Equatable {
    public var name: String
    /// Base URL up to and including the API version, e.g. `http://127.0.0.1:11434/v1`.
    public var baseURL: String
    /// Name of the environment variable holding the bearer token; empty means none.
    public var apiKeyEnv: String
    /// A file holding the bearer token (`api_key_file`; relative paths are under
    /// `$CREDENTIALS_DIRECTORY` when set); empty means none. Read once, at load.
    public var apiKeyFile: String
    /// The key read from ``apiKeyFile`` at load.
    public var apiKeyFromFile: SecretValue?
    /// A PEM bundle of the certificate authorities this upstream's TLS certificate must chain to,
    /// instead of the system's roots (`ca_file`); empty means the system's. Read once, at load.
    public var caFile: String
    /// The certificates of ``caFile`` and the TLS context trusting them, made at load.
    package var trust: UpstreamTrust?
    /// Forward the client's own `Authorization` header instead of injecting the key.
    public var passClientAuthorization: Bool
    /// Requests sent to this upstream at once, across all event loops (0: no limit); more wait
    /// in line. For servers that serve one request at a time (llama.cpp's cuts a running stream
    /// when a second request arrives).
    public var maxConcurrent: Int
    /// Idle connections kept open to this upstream on each event loop (`warm_connections`),
    /// opened at start and after a reload and refilled in the background as requests take
    /// them: a request that finds one pays no TCP or TLS handshake. 0: none kept beyond use.
    public var warmConnections: Int
    /// Connections to this upstream being opened at once on each event loop (`max_connecting`;
    /// 0: no cap). A burst past it waits for a connect to finish or a connection to come free,
    /// instead of opening a connection per request at the same moment (a TCP and TLS handshake
    /// each, which small servers such as Ollama and llama.cpp accept slowly).
    public var maxConnecting: Int
    /// Offer HTTP/2 in the TLS handshake of an `https://` upstream (`http2`, default true): an
    /// upstream that chooses it gets one connection carrying many requests at once, one that
    /// does not is spoken to in HTTP/1.1. No effect on `http://` upstreams.
    public var http2: Bool

    public init(
        name: String,
        baseURL: String,
        apiKeyEnv: String = "",
        passClientAuthorization: Bool = false,
        maxConcurrent: Int = 0,
        apiKeyFile: String = "",
        caFile: String = "",
        warmConnections: Int = 0,
        maxConnecting: Int = 8,
        http2: Bool = true
    ) {
        self.http2 = http2
        self.warmConnections = warmConnections
        self.maxConnecting = maxConnecting
        self.name = name
        self.baseURL = baseURL
        self.apiKeyEnv = apiKeyEnv
        self.apiKeyFile = apiKeyFile
        self.caFile = caFile
        self.maxConcurrent = maxConcurrent
        self.passClientAuthorization = passClientAuthorization
    }
}

/// `[cache]`: the response cache (exact and semantic; in memory or shared through Redis).
public struct CacheConfiguration: Sendable, Equatable {
    public enum Backend: String, Sendable, Equatable, CaseIterable {
        case memory
        case redis
    }

    /// Off: every answer says `X-Sidecar-Cache: bypass`.
    public var enabled = true
    public var backend: Backend
    public var redisURL: String
    /// How long Redis may take (connect or command) before the request goes on uncached.
    public var redisTimeoutMilliseconds = 250
    public var ttlSeconds: Int
    /// The in-memory store's bounds (with Redis: the local copy of hot entries).
    public var maxEntries = 10_000
    public var maxMegabytes = 256
    /// Share entries between client credentials (by default each credential has its own).
    public var shared = false
    /// Requests with a higher `temperature` are not cached (`nil`: any).
    public var maxTemperature: Double?
    /// Semantic lookups (the last user message, compared by meaning).
    public var semantic = true
    /// The cosine similarity a semantic hit needs (before its guards).
    public var semanticThreshold: Double = 0.87
    public var semanticMaxEntries = 100_000
    /// How long a request may wait for its embedding; beyond it, no semantic lookup.
    public var semanticBudgetMilliseconds = 30
    /// Semantic lookups for requests with tools (exact ones always happen).
    public var semanticWithTools = false

    public init(backend: Backend = .memory, redisURL: String = "redis://127.0.0.1:6379/0", ttlSeconds: Int = 86400) {
        self.backend = backend
        self.redisURL = redisURL
        self.ttlSeconds = ttlSeconds
    }
}
