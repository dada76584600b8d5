import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Prometheus

@testable import SidecarCore

/// Runs the real sidecar on 127.0.0.1 port 0 against upstreams on the given ports.
enum SidecarHarness {
    /// A config with a `local` (free) and a `cloud` (priced) upstream, both on `port`.
    static func configuration(
        port: Int,
        cloudPort: Int? = nil,
        extra: String = "",
        timeouts: String = "",
        routing: String = ""
    ) throws -> SidecarConfiguration {
        let toml = """
            \(timeouts)
            [[upstreams]]
            name = "ollama"
            base_url = "http://127.0.0.1:\(port)/v1"
            [[upstreams]]
            name = "cloud"
            base_url = "http://127.0.0.1:\(cloudPort ?? port)/v1/"
            api_key_env = "CLOUD_KEY"
            \(extra)
            [[models]]
            name = "small-local"
            upstream = "ollama"
            [[models]]
            name = "big-cloud"
            upstream = "cloud"
            input_usd_per_mtok = 2.50
            output_usd_per_mtok = 10.00
            [[models]]
            name = "embed-cloud"
            upstream = "cloud"
            input_usd_per_mtok = 0.02
            [routing]
            tiers = [ { max_score = 0.40, model = "small-local" }, { max_score = 1.01, model = "big-cloud" } ]
            \(routing)
            """
        return try SidecarConfiguration(toml: toml, file: "test.conf")
    }

    static func run<Value: Sendable>(
        _ configuration: SidecarConfiguration,
        environment: [String: String] = ["CLOUD_KEY": "sk-cloud-secret"],
        _ body: @Sendable (SidecarTestClient, Int, PrometheusCollectorRegistry) async throws -> Value
    ) async throws -> Value {
        let registry = PrometheusCollectorRegistry()
        var logger = Logger(label: "sidecar-test")
        logger.logLevel = .warning
        let app = SidecarApplication.make(
            runtime: SidecarRuntime(configuration: configuration, environment: environment),
            listen: ListenAddress(host: "127.0.0.1", port: 0),
            metricsFactory: PrometheusMetricsFactory(registry: registry),
            prometheus: registry,
            logger: logger
        )
        return try await app.test { client in
            guard let port = client.port else { throw CancellationError() }
            return try await body(client, port, registry)
        }
    }

    static func chatBody(
        _ prompt: String,
        model: String = "gpt-4o",
        stream: Bool = false,
        extra: String = ""
    ) -> ByteBuffer {
        let encoded = String(decoding: try! JSONEncoder().encode(prompt), as: UTF8.self)
        return ByteBuffer(
            string:
                #"{"model":"\#(model)","messages":[{"role":"user","content":\#(encoded)}],"stream":\#(stream)\#(extra)}"#
        )
    }

    static let simplePrompt = "What is 2+2?"
    static let hardPrompt = """
        Design a multi-region architecture for a payments platform and analyze the trade-offs.
        1. Compare active-active and active-passive replication for the ledger database.
        2. Explain how you would ensure exactly-once processing of card authorizations.
        3. Evaluate the security threat model, including key management and PCI scope.
        4. Propose a migration plan from the current monolith, with failure modes and rollback.
        The design must handle 20,000 transactions per second and should justify every choice.
        """
}
