import Foundation
import HTTPTypes

extension SidecarConfiguration {
    /// Checks references between sections and value shapes that TOML types cannot express.
    func validate(locator: TOMLLineLocator) throws(ConfigurationError) {
        func fail(_ key: String, _ reason: String) -> ConfigurationError {
            ConfigurationError(file: locator.file, line: locator.line(of: key), key: key, reason: reason)
        }
        if self.upstreams.isEmpty {
            throw fail("upstreams", "at least one [[upstreams]] entry is required")
        }
        var upstreamNames: Set<String> = []
        for (index, upstream) in self.upstreams.enumerated() {
            let path = "upstreams[\(index)]"
            if upstream.name.isEmpty { throw fail("\(path).name", "missing; every upstream needs a name") }
            if !upstreamNames.insert(upstream.name).inserted {
                throw fail("\(path).name", "duplicate upstream name \"\(upstream.name)\"")
            }
            guard let url = URL(string: upstream.baseURL), let scheme = url.scheme?.lowercased(),
                scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty
            else {
                throw fail("\(path).base_url", "must be an http:// or https:// URL, found \"\(upstream.baseURL)\"")
            }
            if url.user != nil || url.password != nil {
                throw fail(
                    "\(path).base_url",
                    "must not carry a user or password; a key goes in api_key_env or api_key_file"
                )
            }
            if url.query != nil || url.fragment != nil {
                throw fail("\(path).base_url", "must not carry a query or fragment")
            }
            if !upstream.caFile.isEmpty && scheme != "https" {
                throw fail("\(path).ca_file", "only an https:// upstream has certificates to verify")
            }
            if !upstream.apiKeyEnv.isEmpty && !Self.isEnvironmentName(upstream.apiKeyEnv) {
                throw fail("\(path).api_key_env", "must name an environment variable, found \"\(upstream.apiKeyEnv)\"")
            }
        }
        var modelNames: Set<String> = []
        for (index, model) in self.models.enumerated() {
            let path = "models[\(index)]"
            if model.name.isEmpty { throw fail("\(path).name", "missing; every model needs a name") }
            if model.name == self.routing.autoAlias {
                throw fail("\(path).name", "\"\(model.name)\" is the routing alias and cannot name a model")
            }
            if !modelNames.insert(model.name).inserted {
                throw fail("\(path).name", "duplicate model name \"\(model.name)\"")
            }
            for upstream in model.upstreams where !upstreamNames.contains(upstream) {
                let key = model.upstreams.count == 1 ? "\(path).upstream" : "\(path).upstreams"
                throw fail(key, "no upstream named \"\(upstream)\"")
            }
        }
        for (index, model) in self.models.enumerated() {
            for fallback in model.fallbacks where !modelNames.contains(fallback) || fallback == model.name {
                let reason =
                    fallback == model.name ? "a model cannot fall back to itself" : "no model named \"\(fallback)\""
                throw fail("models[\(index)].fallbacks", reason)
            }
        }
        if !self.embeddings.localModel.isEmpty && modelNames.contains(self.embeddings.localModel) {
            throw fail(
                "embeddings.local_model",
                "\"\(self.embeddings.localModel)\" is also a [[models]] name; give the local embedder its own name"
            )
        }
        if self.routing.tiers.isEmpty {
            throw fail("routing.tiers", "at least one tier is required")
        }
        var previous = -Double.infinity
        for (index, tier) in self.routing.tiers.enumerated() {
            let path = "routing.tiers[\(index)]"
            if !modelNames.contains(tier.model) {
                throw fail("\(path).model", "no model named \"\(tier.model)\" in [[models]]")
            }
            if !(tier.maxScore > previous) {
                throw fail("\(path).max_score", "tiers must be ordered by increasing max_score")
            }
            previous = tier.maxScore
        }
        if previous <= 1.0 {
            throw fail("routing.tiers", "the last tier's max_score must be above 1.0 so every score has a tier")
        }
        var appNames: Set<String> = []
        for (index, app) in self.routing.apps.enumerated() {
            let path = "routing.apps[\(index)]"
            if !appNames.insert(app.name).inserted { throw fail("\(path).name", "\"\(app.name)\" is listed twice") }
            if app.maxTier != Int.max && app.maxTier >= self.routing.tiers.count {
                throw fail(
                    "\(path).max_tier",
                    "is \(app.maxTier) but the tiers are numbered 0 to \(self.routing.tiers.count - 1)"
                )
            }
        }
        if self.routing.autoAlias.isEmpty { throw fail("routing.auto_alias", "must not be empty") }
        if HTTPField.Name(self.routing.pinHeader) == nil {
            throw fail("routing.pin_header", "not a valid header name: \"\(self.routing.pinHeader)\"")
        }
        if !self.routing.defaultUpstream.isEmpty && !upstreamNames.contains(self.routing.defaultUpstream) {
            throw fail("routing.default_upstream", "no upstream named \"\(self.routing.defaultUpstream)\"")
        }
        if self.cache.backend == .redis {
            guard let url = URL(string: self.cache.redisURL), url.scheme == "redis" || url.scheme == "unix" else {
                throw fail("cache.redis_url", "must be a redis:// or unix:// URL, found \"\(self.cache.redisURL)\"")
            }
        }
    }

    private static func isEnvironmentName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
            return false
        }
        return name.utf8.allSatisfy { byte in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
        }
    }

    /// The upstream for `/v1/*` paths the sidecar does not handle itself.
    public var defaultUpstreamName: String {
        self.routing.defaultUpstream.isEmpty ? (self.upstreams.first?.name ?? "") : self.routing.defaultUpstream
    }
}
