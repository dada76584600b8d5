import Foundation
import TOMLKit

extension SidecarConfiguration {
    /// Parses and validates `sidecar.conf` text.
    ///
    /// - Parameters:
    ///   - toml: the file's contents.
    ///   - file: the file name used in error messages.
    /// - Throws: ``ConfigurationError`` naming the file, line, key and reason.
    public init(toml: String, file: String) throws(ConfigurationError) {
        let locator = TOMLLineLocator(file: file, source: toml)
        let root: TOMLTable
        do {
            root = try TOMLTable(string: toml)
        } catch let error as TOMLParseError {
            throw ConfigurationError(file: file, line: error.source.begin.line, key: "", reason: error.description)
        } catch {
            throw ConfigurationError(file: file, key: "", reason: "cannot parse TOML: \(error)")
        }
        var reader = TOMLTableReader(table: root, path: "", locator: locator)
        var config = SidecarConfiguration()

        if var server = try reader.table("server") {
            let listenText = try server.string("listen", default: config.server.listen.description)
            guard let listen = ListenAddress(parsing: listenText) else {
                throw server.error("listen", "expected HOST:PORT, found \"\(listenText)\"")
            }
            config.server.listen = listen
            config.server.maxBodyBytes = try server.int(
                "max_body_bytes",
                default: config.server.maxBodyBytes,
                range: 1024...1 << 30
            )
            config.server.maxResponseBytes = try server.int(
                "max_response_bytes",
                default: config.server.maxResponseBytes,
                range: 1024...1 << 31
            )
            try server.rejectUnknownKeys()
        }

        if var timeouts = try reader.table("timeouts") {
            let connect = try timeouts.int("connect_ms", default: 2000, range: 1...600_000)
            let request = try timeouts.int("request_ms", default: 600_000, range: 1...86_400_000)
            config.timeouts = TimeoutConfiguration(connect: .milliseconds(connect), request: .milliseconds(request))
            try timeouts.rejectUnknownKeys()
        }

        for var upstream in try reader.tables("upstreams") {
            config.upstreams.append(
                UpstreamConfiguration(
                    name: try upstream.string("name", default: ""),
                    baseURL: try upstream.string("base_url", default: ""),
                    apiKeyEnv: try upstream.string("api_key_env", default: ""),
                    passClientAuthorization: try upstream.bool("pass_client_authorization", default: false)
                )
            )
            try upstream.rejectUnknownKeys()
        }

        for var model in try reader.tables("models") {
            config.models.append(
                ModelConfiguration(
                    name: try model.string("name", default: ""),
                    upstream: try model.string("upstream", default: ""),
                    inputUSDPerMTok: try model.decimal("input_usd_per_mtok", default: 0),
                    outputUSDPerMTok: try model.decimal("output_usd_per_mtok", default: 0)
                )
            )
            try model.rejectUnknownKeys()
        }

        if var routing = try reader.table("routing") {
            config.routing = try Self.routing(from: &routing)
            try routing.rejectUnknownKeys()
        }

        if var cache = try reader.table("cache") {
            let backendText = try cache.string("backend", default: config.cache.backend.rawValue)
            guard let backend = CacheConfiguration.Backend(rawValue: backendText) else {
                throw cache.error("backend", "expected \"memory\" or \"redis\", found \"\(backendText)\"")
            }
            config.cache.backend = backend
            config.cache.redisURL = try cache.string("redis_url", default: config.cache.redisURL)
            config.cache.ttlSeconds = try cache.int(
                "ttl_seconds",
                default: config.cache.ttlSeconds,
                range: 0...31_536_000
            )
            try cache.rejectUnknownKeys()
        }

        try reader.rejectUnknownKeys()
        try config.validate(locator: locator)
        self = config
    }

    private static func routing(from reader: inout TOMLTableReader) throws(ConfigurationError) -> RoutingConfiguration {
        var routing = RoutingConfiguration()
        for var tier in try reader.tables("tiers") {
            guard let maxScore = try tier.double("max_score") else {
                throw tier.error("max_score", "missing; every tier needs max_score and model")
            }
            let model = try tier.string("model", default: "")
            try tier.rejectUnknownKeys()
            routing.tiers.append(.init(maxScore: maxScore, model: model))
        }
        let modeText = try reader.string("mode", default: routing.mode.rawValue)
        guard let mode = RoutingConfiguration.Mode(rawValue: modeText) else {
            throw reader.error("mode", "expected \"all\" or \"auto_only\", found \"\(modeText)\"")
        }
        routing.mode = mode
        routing.autoAlias = try reader.string("auto_alias", default: routing.autoAlias)
        routing.pinHeader = try reader.string("pin_header", default: routing.pinHeader)
        routing.pinPrefix = try reader.string("pin_prefix", default: routing.pinPrefix)
        routing.defaultUpstream = try reader.string("default_upstream", default: routing.defaultUpstream)
        routing.ollamaUpstream = try reader.string("ollama_upstream", default: routing.ollamaUpstream)
        return routing
    }
}
