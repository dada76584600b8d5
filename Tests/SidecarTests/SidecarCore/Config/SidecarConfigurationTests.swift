import Foundation
import Testing

@testable import SidecarCore
@testable import SidecarHTTP
@testable import SidecarPolicy

@Suite struct SidecarConfigurationTests {
    // Tests/SidecarTests/SidecarCore/Config/<this file>
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func repositoryConfigEqualsEmbeddedDefaults() throws {
        let file = try String(contentsOf: Self.packageRoot.appendingPathComponent("sidecar.conf"), encoding: .utf8)
        #expect(file == SidecarConfiguration.embeddedDefaultsTOML)
    }

    @Test func embeddedDefaultsParseToTheDocumentedValues() throws {
        let config = try SidecarConfiguration.embeddedDefaults()
        #expect(config.server.listen == ListenAddress(host: "127.0.0.1", port: 8088))
        #expect(config.server.maxBodyBytes == 16_777_216)
        #expect(config.server.accessLog)
        #expect(config.spend == SpendConfiguration())
        #expect(config.clients.isEmpty)
        #expect(config.timeouts == TimeoutConfiguration())
        #expect(config.resilience == ResilienceConfiguration())
        #expect(
            config.upstreams == [
                UpstreamConfiguration(name: "ollama", baseURL: "http://127.0.0.1:11434/v1"),
                UpstreamConfiguration(
                    name: "openai",
                    baseURL: "https://api.openai.com/v1",
                    apiKeyEnv: "OPENAI_API_KEY"
                ),
            ]
        )
        #expect(
            config.models == [
                ModelConfiguration(name: "llama3.2:3b", upstream: "ollama", fallbacks: ["gpt-4o"]),
                ModelConfiguration(
                    name: "gpt-4o",
                    upstream: "openai",
                    inputUSDPerMTok: Decimal(string: "2.5")!,
                    outputUSDPerMTok: 10,
                    fallbacks: ["llama3.2:3b"]
                ),
                ModelConfiguration(
                    name: "text-embedding-3-small",
                    upstream: "openai",
                    inputUSDPerMTok: Decimal(string: "0.02")!
                ),
            ]
        )
        #expect(
            config.routing
                == RoutingConfiguration(
                    tiers: [.init(maxScore: 0.40, model: "llama3.2:3b"), .init(maxScore: 1.01, model: "gpt-4o")],
                    router: "./models/router"
                )
        )
        #expect(config.cache == CacheConfiguration())
        #expect(config.defaultUpstreamName == "ollama")
    }

    static let minimal = """
        [[upstreams]]
        name = "a"
        base_url = "http://127.0.0.1:1/v1"

        [[models]]
        name = "m"
        upstream = "a"

        [routing]
        tiers = [ { max_score = 1.5, model = "m" } ]
        """

    @Test func spendBudgetsAndClientsAreReadAndChecked() throws {
        let config = try SidecarConfiguration(
            toml: Self.minimal + """

                [spend]
                state_file = "spend.json"
                budgets = [ { app = "billing", daily_usd = 5 }, { app = "web", daily_usd = 0.25 } ]

                [[clients]]
                app = "billing"
                token_env = "BILLING_TOKEN"
                """,
            file: "spend.conf"
        )
        #expect(config.spend.stateFile == "spend.json")
        #expect(config.spend.dailyBudgets == ["billing": 5, "web": 0.25])
        #expect(config.clients == [ClientConfiguration(app: "billing", tokenEnv: "BILLING_TOKEN")])
        for broken in [
            "[spend]\nbudgets = [ { app = \"x\", daily_usd = -1 } ]", "[spend]\nbudgets = [ { daily_usd = 1 } ]",
            "[[clients]]\napp = \"x\"", "[spend]\ncolour = 1",
        ] {
            #expect(throws: ConfigurationError.self) {
                try SidecarConfiguration(toml: Self.minimal + "\n" + broken, file: "broken.conf")
            }
        }
    }

    @Test func minimalConfigTakesDefaultsForEverythingElse() throws {
        let config = try SidecarConfiguration(toml: Self.minimal, file: "min.conf")
        #expect(config.server == ServerConfiguration())
        #expect(config.routing.pinHeader == "X-Sidecar-Pin")
        #expect(config.routing.mode == .all)
    }

    /// `warm_connections` and `max_connecting` reach the pools per endpoint; two upstreams on
    /// one endpoint give it the most warm connections and the tightest cap.
    @Test func poolSettingsAreReadPerUpstreamAndMergedPerEndpoint() throws {
        let defaults = try SidecarConfiguration(toml: Self.minimal, file: "min.conf")
        #expect(defaults.upstreams[0].warmConnections == 0)
        #expect(defaults.upstreams[0].maxConnecting == 8)
        let toml = Self.minimal.replacingOccurrences(
            of: "base_url = \"http://127.0.0.1:1/v1\"",
            with: """
                base_url = "http://127.0.0.1:1/v1"
                warm_connections = 2
                max_connecting = 0

                [[upstreams]]
                name = "b"
                base_url = "http://127.0.0.1:1/v1"
                max_connecting = 3
                """
        )
        let config = try SidecarConfiguration(toml: toml, file: "pools.conf")
        #expect(config.upstreams.map(\.maxConnecting) == [0, 3])
        let directory = UpstreamDirectory(configuration: config, environment: [:])
        let settings = directory.endpointSettings(config.upstreams)
        #expect(settings.count == 2)
        #expect(settings[0].settings.merged(with: settings[1].settings) == .init(warmConnections: 2, maxConnecting: 3))
        #expect(
            Self.message(toml.replacingOccurrences(of: "max_connecting = 3", with: "max_connecting = -1")) != "no error"
        )
    }

    static func message(_ toml: String) -> String {
        do {
            _ = try SidecarConfiguration(toml: toml, file: "bad.conf")
            return "no error"
        } catch {
            return error.description
        }
    }

    @Test func badListenAddressNamesFileLineAndKey() {
        #expect(
            Self.message("[server]\nlisten = \"localhost\"\n" + Self.minimal)
                == #"bad.conf:2: server.listen: expected HOST:PORT or unix:PATH, found "localhost""#
        )
    }

    @Test func unknownKeyIsAnError() {
        #expect(Self.message("[server]\nlisen = \"x\"\n" + Self.minimal) == "bad.conf:2: server.lisen: unknown key")
    }

    @Test func wrongTypeIsNamed() {
        #expect(
            Self.message("[server]\nmax_body_bytes = \"big\"\n" + Self.minimal)
                == "bad.conf:2: server.max_body_bytes: expected an integer, found string"
        )
    }

    @Test func modelReferencingUnknownUpstreamIsNamedWithItsIndex() {
        let toml = Self.minimal.replacingOccurrences(of: "upstream = \"a\"", with: "upstream = \"nope\"")
        #expect(Self.message(toml) == #"bad.conf:7: models[0].upstream: no upstream named "nope""#)
    }

    @Test func tierReferencingUnknownModelIsAnError() {
        let toml = Self.minimal.replacingOccurrences(of: "model = \"m\"", with: "model = \"zz\"")
        #expect(Self.message(toml) == #"bad.conf:10: routing.tiers[0].model: no model named "zz" in [[models]]"#)
    }

    @Test func lastTierMustCoverScoreOne() {
        let toml = Self.minimal.replacingOccurrences(of: "1.5", with: "0.9")
        #expect(
            Self.message(toml)
                == "bad.conf:10: routing.tiers: the last tier's max_score must be above 1.0 so every score has a tier"
        )
    }

    @Test func syntaxErrorReportsTheLine() {
        let message = Self.message("[server\nlisten = 1\n")
        #expect(message.hasPrefix("bad.conf:1: "))
    }

    @Test func badBaseURLIsRejected() {
        let toml = Self.minimal.replacingOccurrences(of: "http://127.0.0.1:1/v1", with: "ftp://x")
        #expect(
            Self.message(toml)
                == #"bad.conf:3: upstreams[0].base_url: must be an http:// or https:// URL, found "ftp://x""#
        )
    }

    @Test func duplicateUpstreamNamesAreRejected() {
        let toml = "[[upstreams]]\nname = \"a\"\nbase_url = \"http://h/v1\"\n" + Self.minimal
        #expect(Self.message(toml) == #"bad.conf:5: upstreams[1].name: duplicate upstream name "a""#)
    }

    @Test func tiersMustIncrease() {
        let toml = Self.minimal.replacingOccurrences(
            of: "tiers = [ { max_score = 1.5, model = \"m\" } ]",
            with: "tiers = [ { max_score = 1.5, model = \"m\" }, { max_score = 1.2, model = \"m\" } ]"
        )
        #expect(
            Self.message(toml)
                == "bad.conf:10: routing.tiers[1].max_score: tiers must be ordered by increasing max_score"
        )
    }

    @Test func unknownCacheBackendIsRejected() {
        #expect(
            Self.message(Self.minimal + "\n[cache]\nbackend = \"disk\"\n")
                == #"bad.conf:12: cache.backend: expected "memory" or "redis", found "disk""#
        )
    }

    @Test func listenAddressParsesIPv6() {
        #expect(ListenAddress(parsing: "[::1]:8088") == ListenAddress(host: "::1", port: 8088))
        #expect(ListenAddress(parsing: "127.0.0.1:99999") == nil)
    }

    @Test func modelWithSeveralUpstreamsAndFallbacksParses() throws {
        let toml = Self.minimal.replacingOccurrences(
            of: "upstream = \"a\"",
            with: "upstreams = [\"a\", \"a\"]\nbalance = \"least_loaded\""
        )
        let config = try SidecarConfiguration(toml: toml, file: "x.conf")
        #expect(config.models[0].upstreams == ["a", "a"])
        #expect(config.models[0].balance == .leastLoaded)
    }

    @Test func fallbackToUnknownModelIsRejected() {
        let toml = Self.minimal.replacingOccurrences(
            of: "upstream = \"a\"",
            with: "upstream = \"a\"\nfallbacks = [\"zz\"]"
        )
        #expect(Self.message(toml) == #"bad.conf:8: models[0].fallbacks: no model named "zz""#)
    }

    @Test func retryAndBreakerSectionsParse() throws {
        let toml = Self.minimal + "\n[retry]\nmax_attempts = 5\nbase_delay_ms = 20\n[breaker]\ncooldown_ms = 1500\n"
        let config = try SidecarConfiguration(toml: toml, file: "x.conf")
        #expect(config.resilience.retry.maxAttempts == 5)
        #expect(config.resilience.retry.baseDelay == .milliseconds(20))
        #expect(config.resilience.breaker.cooldown == .milliseconds(1500))
    }

    @Test func outOfRangeRetryAttemptsAreRejected() {
        #expect(
            Self.message(Self.minimal + "\n[retry]\nmax_attempts = 0\n")
                == "bad.conf:12: retry.max_attempts: must be between 1 and 10, found 0"
        )
    }
}
