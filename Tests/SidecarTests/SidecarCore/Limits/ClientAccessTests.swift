import Foundation
import NIOHTTP1
import Synchronization
import Testing

@testable import SidecarCore

@Suite struct ClientAccessTests {
    static let clients: [ClientConfiguration] = [
        .init(app: "billing", tokenEnv: "BILLING_TOKEN"),
        .init(app: "web", tokenEnv: "WEB_TOKEN"),
        .init(app: "batch", tokenEnv: "BATCH_TOKEN"),
    ]
    static let environment = [
        "BILLING_TOKEN": "sk-billing-0123456789abcdef",
        "WEB_TOKEN": "sk-web-0123456789abcdef",
        "BATCH_TOKEN": "sk-batch-0123456789abcdef",
    ]

    static func bearer(_ token: String) -> HTTPHeaders { HTTPHeaders([("Authorization", "Bearer \(token)")]) }

    @Test func aRequestNeedsOneOfTheTokensExceptOnPublicPaths() {
        let apps = AppAttribution(
            clients: Self.clients,
            environment: Self.environment,
            publicPaths: ["/healthz", "/open/"]
        )
        let path = "/v1/chat/completions"
        #expect(apps.requiresToken)
        #expect(apps.identify(Self.bearer("sk-web-0123456789abcdef"), path: path) == .app("web"))
        #expect(
            apps.identify(HTTPHeaders([("authorization", "bearer sk-batch-0123456789abcdef")]), path: path)
                == .app("batch")
        )
        #expect(apps.identify(HTTPHeaders(), path: path) == .refused(.missingClientToken))
        #expect(apps.identify(HTTPHeaders([("Authorization", "Bearer ")]), path: path) == .refused(.missingClientToken))
        #expect(
            apps.identify(HTTPHeaders([("Authorization", "Basic sk-web-0123456789abcdef")]), path: path)
                == .refused(.missingClientToken)
        )
        for wrong in ["sk-web-0123456789abcdeF", "sk-web-0123456789abcde", "sk-web-0123456789abcdef0", "x"] {
            #expect(apps.identify(Self.bearer(wrong), path: path) == .refused(.invalidClientToken))
        }
        // Public paths: exact, or under a prefix ending in a slash.
        #expect(apps.identify(HTTPHeaders(), path: "/healthz") == .app("default"))
        #expect(apps.identify(HTTPHeaders(), path: "/open/x") == .app("default"))
        #expect(apps.identify(HTTPHeaders(), path: "/healthzz") == .refused(.missingClientToken))
        #expect(apps.identify(HTTPHeaders(), path: "/open") == .refused(.missingClientToken))
        // Without clients, nothing is refused.
        let open = AppAttribution(clients: [], environment: [:])
        #expect(!open.requiresToken)
        #expect(open.identify(HTTPHeaders(), path: path) == .app("default"))
    }

    @Test func theTokenIsComparedAsADigestWithEveryClientInConstantTime() {
        let calls = Mutex<[(Int, Int)]>([])
        let apps = AppAttribution(
            clients: Self.clients,
            environment: Self.environment,
            comparator: .init { a, b in
                calls.withLock { $0.append((a.count, b.count)) }
                return ConstantTime.equal(a, b)
            }
        )
        for (token, expected) in [
            ("sk-billing-0123456789abcdef", AppAttribution.Identity.app("billing")),  // the first client
            ("sk-batch-0123456789abcdef", .app("batch")),  // the last
            ("s", .refused(.invalidClientToken)),  // short
            (String(repeating: "k", count: 4096), .refused(.invalidClientToken)),  // long
        ] {
            calls.withLock { $0.removeAll() }
            #expect(apps.identify(Self.bearer(token), path: "/v1/models") == expected)
            // Every client is compared, whichever matches, and always 32-byte digests (the
            // token's length never reaches the comparison).
            let made = calls.withLock { $0 }
            #expect(made.count == Self.clients.count)
            #expect(made.allSatisfy { $0 == (32, 32) })
        }
        // The default comparator is the constant-time one.
        let plain = AppAttribution(clients: Self.clients, environment: Self.environment)
        #expect(plain.identify(Self.bearer("sk-web-0123456789abcdef"), path: "/") == .app("web"))
    }

    @Test func constantTimeEqualityLooksAtEveryByte() {
        #expect(ConstantTime.equal([], []))
        #expect(ConstantTime.equal([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equal([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equal([0, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equal([1, 2], [1, 2, 3]))
        let a = [UInt8](repeating: 0xAB, count: 32)
        for index in a.indices {
            var b = a
            b[index] ^= 0x01
            #expect(!ConstantTime.equal(a, b))
        }
    }

    @Test func listeningBeyondLoopbackNeedsTokensAndEveryTokenMustBeSet() throws {
        var config = SidecarConfiguration()
        for host in ["127.0.0.1", "127.3.2.1", "localhost", "::1"] {
            config.server.listen = ListenAddress(host: host, port: 8088)
            #expect(config.server.listen.isLoopback, "\(host)")
            #expect(try config.validateAccess(environment: [:], file: "s.conf").isEmpty)
        }
        // A Unix socket reaches only this host.
        let socket = try #require(ListenAddress(parsing: "unix:/run/llm-sidecar/sidecar.sock"))
        #expect(socket.socketPath == "/run/llm-sidecar/sidecar.sock" && socket.isLoopback)
        #expect(socket.description == "unix:/run/llm-sidecar/sidecar.sock")
        #expect(ListenAddress(parsing: "unix:") == nil)
        #expect(ListenAddress(parsing: "unix:/" + String(repeating: "a", count: 200)) == nil)
        for host in ["0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "example.com", "127.0.0.1.example.com"] {
            config.server.listen = ListenAddress(host: host, port: 8088)
            #expect(!config.server.listen.isLoopback, "\(host)")
            let error = #expect(throws: ConfigurationError.self) {
                try config.validateAccess(environment: [:], file: "s.conf")
            }
            #expect(error?.key == "server.listen")
            #expect(error?.reason.contains("[[clients]]") == true)
        }
        // With tokens it may listen anywhere.
        config.server.listen = ListenAddress(host: "0.0.0.0", port: 8088)
        config.clients = Self.clients
        #expect(try config.validateAccess(environment: Self.environment, file: "s.conf").isEmpty)
        // Every client's variable must be set, tokens must differ, and short ones are warned about.
        var missing = Self.environment
        missing["WEB_TOKEN"] = ""
        let unset = #expect(throws: ConfigurationError.self) {
            try config.validateAccess(environment: missing, file: "s.conf")
        }
        #expect(unset?.key == "clients[1].token_env")
        #expect(unset?.reason.contains("WEB_TOKEN") == true)
        var shared = Self.environment
        shared["BATCH_TOKEN"] = shared["WEB_TOKEN"]
        let same = #expect(throws: ConfigurationError.self) {
            try config.validateAccess(environment: shared, file: "s.conf")
        }
        #expect(same?.reason.contains("same token") == true)
        #expect(same?.description.contains("sk-web") == false)
        var short = Self.environment
        short["BATCH_TOKEN"] = "abc"
        let warnings = try config.validateAccess(environment: short, file: "s.conf")
        #expect(warnings.count == 1 && warnings[0].contains("batch") && !warnings[0].contains("abc\""))
    }

    @Test func limitsAreReadFromTheConfiguration() throws {
        let config = try SidecarConfiguration(
            toml: SidecarConfigurationTests.minimal + """

                [server]
                public_paths = ["/healthz", "/metrics"]
                [limits]
                max_in_flight = 8
                max_queued = 4
                queue_timeout_ms = 250
                max_connections = 100
                max_header_bytes = 4096
                max_field_bytes = 1024
                max_headers = 20
                request_read_ms = 500
                idle_connection_ms = 900
                requests_per_minute = 60
                apps = [ { app = "billing", tokens_per_minute = 1000 } ]
                """,
            file: "limits.conf"
        )
        let limits = config.limits
        #expect(config.server.publicPaths == ["/healthz", "/metrics"])
        #expect(limits.maxInFlight == 8 && limits.maxQueued == 4 && limits.queueTimeout == .milliseconds(250))
        #expect(limits.maxConnections == 100 && limits.maxHeaderBytes == 4096 && limits.maxFieldBytes == 1024)
        #expect(limits.maxHeaders == 20 && limits.requestRead == .milliseconds(500))
        #expect(limits.idleConnection == .milliseconds(900))
        #expect(limits.rate(for: "web") == .init(requestsPerMinute: 60))
        // An app's entry starts from the default rate.
        #expect(limits.rate(for: "billing") == .init(requestsPerMinute: 60, tokensPerMinute: 1000))
        // Unknown keys, an entry without its app and a public path that is not a path are named.
        for (toml, key) in [
            ("[limits]\nmax_inflight = 3", "limits.max_inflight"),
            ("[limits]\napps = [ { requests_per_minute = 3 } ]", "limits.apps[0].app"),
            ("[limits]\nmax_headers = 2", "limits.max_headers"),
            ("[server]\npublic_paths = [\"metrics\"]", "server.public_paths"),
            ("[server]\nsocket_mode = \"0999\"", "server.socket_mode"),
            ("[server]\nsocket_mode = \"rw\"", "server.socket_mode"),
        ] {
            let message = SidecarConfigurationTests.message(SidecarConfigurationTests.minimal + "\n" + toml)
            #expect(message.contains(key), "\(message)")
        }
    }
}
