import Foundation
import SidecarEmbedding
import SidecarPolicy
import TOMLKit

extension SidecarConfiguration {
    /// Parses and validates `sidecar.conf` text.
    ///
    /// - Parameters:
    ///   - toml: the file's contents.
    ///   - file: the file name used in error messages.
    ///   - environment: for the files the configuration names (`$CREDENTIALS_DIRECTORY` for
    ///     `api_key_file`); those files are read here, once.
    /// - Throws: ``ConfigurationError`` naming the file, line, key and reason.
    public init(toml: String, file: String, environment: [String: String] = [:]) throws(ConfigurationError) {
        let locator = TOMLLineLocator(file: file, source: toml)
        if let unsafe = TOMLParserGuard.firstUnsafeConstruct(in: toml) {
            throw ConfigurationError(file: file, line: unsafe.line, key: "", reason: unsafe.reason)
        }
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
                throw server.error("listen", "expected HOST:PORT or unix:PATH, found \"\(listenText)\"")
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
            config.server.accessLog = try server.bool("access_log", default: config.server.accessLog)
            if let paths = try server.strings("public_paths") {
                for path in paths where !path.hasPrefix("/") {
                    throw server.error("public_paths", "\"\(path)\" is not a path; paths start with /")
                }
                config.server.publicPaths = paths
            }
            let mode = try server.string("socket_mode", default: "0660")
            guard mode.utf8.count >= 3, mode.utf8.count <= 4, let bits = UInt16(mode, radix: 8), bits <= 0o777 else {
                throw server.error("socket_mode", "expected octal permissions such as \"0660\", found \"\(mode)\"")
            }
            config.server.socketMode = bits
            try server.rejectUnknownKeys()
        }

        if var timeouts = try reader.table("timeouts") {
            let defaults = config.timeouts
            config.timeouts = TimeoutConfiguration(
                connect: try timeouts.milliseconds("connect_ms", default: defaults.connect, range: 1...600_000),
                firstByte: try timeouts.milliseconds(
                    "first_byte_ms",
                    default: defaults.firstByte,
                    range: 1...86_400_000
                ),
                idle: try timeouts.milliseconds("idle_ms", default: defaults.idle, range: 1...86_400_000),
                request: try timeouts.milliseconds("request_ms", default: defaults.request, range: 1...86_400_000)
            )
            try timeouts.rejectUnknownKeys()
        }

        for var upstream in try reader.tables("upstreams") {
            var entry = UpstreamConfiguration(
                name: try upstream.string("name", default: ""),
                baseURL: try upstream.string("base_url", default: ""),
                apiKeyEnv: try upstream.string("api_key_env", default: ""),
                passClientAuthorization: try upstream.bool("pass_client_authorization", default: false),
                maxConcurrent: try upstream.int("max_concurrent", default: 0, range: 0...1_000_000),
                apiKeyFile: try upstream.string("api_key_file", default: ""),
                caFile: try upstream.string("ca_file", default: ""),
                warmConnections: try upstream.int("warm_connections", default: 0, range: 0...64),
                maxConnecting: try upstream.int("max_connecting", default: 8, range: 0...1_024),
                http2: try upstream.bool("http2", default: true)
            )
            try upstream.rejectUnknownKeys()
            try entry.loadFiles(upstream, environment: environment)
            config.upstreams.append(entry)
        }

        for var model in try reader.tables("models") {
            config.models.append(try Self.model(from: &model))
            try model.rejectUnknownKeys()
        }

        if var routing = try reader.table("routing") {
            config.routing = try Self.routing(from: &routing)
            try routing.rejectUnknownKeys()
        }

        config.resilience = try Self.resilience(from: &reader)

        if var embeddings = try reader.table("embeddings") {
            config.embeddings.localModel = try embeddings.string("local_model", default: config.embeddings.localModel)
            config.embeddings.modelsDirectory = try embeddings.string(
                "models_dir",
                default: config.embeddings.modelsDirectory
            )
            try embeddings.rejectUnknownKeys()
        }

        for var client in try reader.tables("clients") {
            let app = try client.string("app", default: "")
            let tokenEnv = try client.string("token_env", default: "")
            guard !app.isEmpty else { throw client.error("app", "missing; every client needs app and token_env") }
            guard !tokenEnv.isEmpty else {
                throw client.error("token_env", "missing; name the environment variable holding the app's token")
            }
            try client.rejectUnknownKeys()
            config.clients.append(.init(app: app, tokenEnv: tokenEnv))
        }

        if var limits = try reader.table("limits") {
            config.limits = try Self.limits(from: &limits)
            try limits.rejectUnknownKeys()
        }

        if var spend = try reader.table("spend") {
            config.spend.stateFile = try spend.string("state_file", default: config.spend.stateFile)
            config.spend.daysKept = try spend.int("days_kept", default: config.spend.daysKept, range: 1...3660)
            for var budget in try spend.tables("budgets") {
                let app = try budget.string("app", default: "")
                guard !app.isEmpty else { throw budget.error("app", "missing; every budget names an app") }
                guard let dollars = try budget.double("daily_usd"), dollars >= 0, dollars.isFinite else {
                    throw budget.error("daily_usd", "missing or negative; a budget is US dollars per day")
                }
                try budget.rejectUnknownKeys()
                config.spend.dailyBudgets[app] = dollars
            }
            try spend.rejectUnknownKeys()
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
            var c = config.cache
            c.enabled = try cache.bool("enabled", default: c.enabled)
            c.redisTimeoutMilliseconds = try cache.int(
                "redis_timeout_ms",
                default: c.redisTimeoutMilliseconds,
                range: 1...60_000
            )
            c.maxEntries = try cache.int("max_entries", default: c.maxEntries, range: 0...100_000_000)
            c.maxMegabytes = try cache.int("max_megabytes", default: c.maxMegabytes, range: 0...1_048_576)
            c.shared = try cache.bool("shared", default: c.shared)
            if let temperature = try cache.double("max_temperature") { c.maxTemperature = temperature }
            c.semantic = try cache.bool("semantic", default: c.semantic)
            if let threshold = try cache.double("semantic_threshold") {
                guard (0...1).contains(threshold) else {
                    throw cache.error("semantic_threshold", "expected a similarity between 0 and 1, found \(threshold)")
                }
                c.semanticThreshold = threshold
            }
            c.semanticMaxEntries = try cache.int(
                "semantic_max_entries",
                default: c.semanticMaxEntries,
                range: 0...10_000_000
            )
            c.semanticBudgetMilliseconds = try cache.int(
                "semantic_budget_ms",
                default: c.semanticBudgetMilliseconds,
                range: 0...10_000
            )
            c.semanticWithTools = try cache.bool("semantic_with_tools", default: c.semanticWithTools)
            config.cache = c
            try cache.rejectUnknownKeys()
        }

        try reader.rejectUnknownKeys()
        try config.validate(locator: locator)
        self = config
    }

    private static func model(from reader: inout TOMLTableReader) throws(ConfigurationError) -> ModelConfiguration {
        let name = try reader.string("name", default: "")
        let single = try reader.string("upstream", default: "")
        let many = try reader.strings("upstreams")
        let upstreams: [String]
        switch (single.isEmpty, many) {
        case (false, nil): upstreams = [single]
        case (true, let many?) where !many.isEmpty: upstreams = many
        case (false, _?): throw reader.error("upstreams", "give either upstream or upstreams, not both")
        default: throw reader.error("upstream", "missing; every model needs an upstream (or upstreams)")
        }
        let balanceText = try reader.string("balance", default: "round_robin")
        guard let balance = UpstreamBalancerStateMachine.Strategy(rawValue: balanceText) else {
            throw reader.error("balance", "expected \"round_robin\" or \"least_loaded\", found \"\(balanceText)\"")
        }
        return ModelConfiguration(
            name: name,
            upstreams: upstreams,
            inputUSDPerMTok: try reader.decimal("input_usd_per_mtok", default: 0),
            outputUSDPerMTok: try reader.decimal("output_usd_per_mtok", default: 0),
            fallbacks: try reader.strings("fallbacks") ?? [],
            balance: balance
        )
    }

    private static func resilience(
        from reader: inout TOMLTableReader
    ) throws(ConfigurationError)
        -> ResilienceConfiguration
    {
        var resilience = ResilienceConfiguration()
        if var retry = try reader.table("retry") {
            let defaults = resilience.retry
            resilience.retry = RetryPolicy(
                maxAttempts: try retry.int("max_attempts", default: defaults.maxAttempts, range: 1...10),
                baseDelay: try retry.milliseconds("base_delay_ms", default: defaults.baseDelay, range: 1...60_000),
                maxDelay: try retry.milliseconds("max_delay_ms", default: defaults.maxDelay, range: 1...600_000),
                maxRetryAfter: try retry.milliseconds(
                    "max_retry_after_ms",
                    default: defaults.maxRetryAfter,
                    range: 0...3_600_000
                )
            )
            let budget = resilience.retryBudget
            resilience.retryBudget = RetryBudget.Configuration(
                ratio: try retry.double("budget_ratio") ?? budget.ratio,
                minRetriesPerSecond: try retry.double("budget_min_per_second") ?? budget.minRetriesPerSecond
            )
            try retry.rejectUnknownKeys()
        }
        if var breaker = try reader.table("breaker") {
            let defaults = resilience.breaker
            resilience.breaker = CircuitBreakerConfiguration(
                consecutiveFailureThreshold: try breaker.int(
                    "consecutive_failures",
                    default: defaults.consecutiveFailureThreshold,
                    range: 1...10_000
                ),
                failureRateThreshold: try breaker.double("failure_rate") ?? defaults.failureRateThreshold,
                minimumRequestsInWindow: try breaker.int(
                    "minimum_requests",
                    default: defaults.minimumRequestsInWindow,
                    range: 1...1_000_000
                ),
                window: try breaker.milliseconds("window_ms", default: defaults.window, range: 100...86_400_000),
                cooldown: try breaker.milliseconds("cooldown_ms", default: defaults.cooldown, range: 1...86_400_000),
                halfOpenMaxProbes: try breaker.int(
                    "half_open_probes",
                    default: defaults.halfOpenMaxProbes,
                    range: 1...1000
                )
            )
            try breaker.rejectUnknownKeys()
        }
        return resilience
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
        routing.router = try reader.string("router", default: routing.router)
        let strategyText = try reader.string("strategy", default: routing.strategy.rawValue)
        guard let strategy = RoutingConfiguration.Strategy(rawValue: strategyText) else {
            let names = RoutingConfiguration.Strategy.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw reader.error("strategy", "expected one of \(names), found \"\(strategyText)\"")
        }
        routing.strategy = strategy
        if let margin = try reader.double("strategy_margin") {
            guard (0...1).contains(margin) else { throw reader.error("strategy_margin", "must be between 0 and 1") }
            routing.strategyMargin = margin
        }
        routing.embeddingBudgetMilliseconds = try reader.int(
            "embedding_budget_ms",
            default: routing.embeddingBudgetMilliseconds,
            range: 0...60_000
        )
        for var app in try reader.tables("apps") {
            let name = try app.string("name", default: "")
            guard !name.isEmpty else { throw app.error("name", "missing; every app entry needs a name") }
            let maxTier = try app.int("max_tier", default: Int.max, range: 0...Int.max)
            try app.rejectUnknownKeys()
            routing.apps.append(.init(name: name, maxTier: maxTier))
        }
        routing.feedbackMaxEntries = try reader.int(
            "feedback_max_entries",
            default: routing.feedbackMaxEntries,
            range: 1...10_000_000
        )
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
        routing.ollamaAdmin = try reader.bool("ollama_admin", default: routing.ollamaAdmin)
        return routing
    }

    private static func limits(
        from reader: inout TOMLTableReader
    ) throws(ConfigurationError)
        -> LimitsConfiguration
    {
        var limits = LimitsConfiguration()
        limits.maxInFlight = try reader.int("max_in_flight", default: limits.maxInFlight, range: 0...1_000_000)
        limits.maxQueued = try reader.int("max_queued", default: limits.maxQueued, range: 0...1_000_000)
        limits.queueTimeout = try reader.milliseconds(
            "queue_timeout_ms",
            default: limits.queueTimeout,
            range: 1...3_600_000
        )
        limits.maxConnections = try reader.int(
            "max_connections",
            default: limits.maxConnections,
            range: 1...10_000_000
        )
        limits.maxHeaderBytes = try reader.int(
            "max_header_bytes",
            default: limits.maxHeaderBytes,
            range: 1024...16 << 20
        )
        limits.maxFieldBytes = try reader.int(
            "max_field_bytes",
            default: limits.maxFieldBytes,
            range: 256...16 << 20
        )
        limits.maxHeaders = try reader.int("max_headers", default: limits.maxHeaders, range: 8...65_534)
        limits.requestRead = try reader.milliseconds(
            "request_read_ms",
            default: limits.requestRead,
            range: 1...86_400_000
        )
        limits.idleConnection = try reader.milliseconds(
            "idle_connection_ms",
            default: limits.idleConnection,
            range: 1...86_400_000
        )
        limits.rate = try Self.rate(from: &reader, default: limits.rate)
        for var app in try reader.tables("apps") {
            let name = try app.string("app", default: "")
            guard !name.isEmpty else { throw app.error("app", "missing; every entry names an app") }
            limits.appRates[name] = try Self.rate(from: &app, default: limits.rate)
            try app.rejectUnknownKeys()
        }
        return limits
    }

    private static func rate(
        from reader: inout TOMLTableReader,
        default fallback: LimitsConfiguration.Rate
    ) throws(ConfigurationError) -> LimitsConfiguration.Rate {
        LimitsConfiguration.Rate(
            requestsPerMinute: try reader.int(
                "requests_per_minute",
                default: fallback.requestsPerMinute,
                range: 0...100_000_000
            ),
            tokensPerMinute: try reader.int(
                "tokens_per_minute",
                default: fallback.tokensPerMinute,
                range: 0...1_000_000_000
            )
        )
    }
}
