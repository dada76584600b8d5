import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import SidecarCore
@testable import SidecarHTTP

/// TLS to upstreams verifies the certificate chain and the host name: a self-signed upstream is
/// refused unless its `ca_file` names the certificate, and even then only under a name (or IP
/// address) the certificate holds.
@Suite(.serialized) struct UpstreamTLSLiveTests {
    static let json: HTTPFields = [.contentType: "application/json"]

    static func configuration(baseURL: String, caFile: String?) throws -> SidecarConfiguration {
        try SidecarConfiguration(
            toml: """
                [retry]
                max_attempts = 1
                [[upstreams]]
                name = "secure"
                base_url = "\(baseURL)"
                api_key_env = "CLOUD_KEY"
                \(caFile.map { "ca_file = \"\($0)\"" } ?? "")
                [[models]]
                name = "secure-model"
                upstream = "secure"
                [routing]
                tiers = [ { max_score = 1.01, model = "secure-model" } ]
                """,
            file: "tls.conf"
        )
    }

    struct Answer: Sendable {
        var status: HTTPResponse.Status
        /// The error's `code` and `message`, if the answer is an error.
        var code: String?
        var message = ""
    }

    /// One chat request through a sidecar on `configuration`.
    static func chat(_ configuration: SidecarConfiguration) async throws -> Answer {
        try await SidecarHarness.run(configuration) { client, _, _ in
            let body = SidecarHarness.chatBody("hi")
            return try await client.execute(uri: "/v1/chat/completions", method: .post, headers: Self.json, body: body)
            {
                response in
                let object = try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))
                let error = (object as? [String: Any])?["error"] as? [String: Any]
                return Answer(
                    status: response.status,
                    code: error?["code"] as? String,
                    message: error?["message"] as? String ?? ""
                )
            }
        }
    }

    static func tlsServer(_ certificate: TestCertificateFiles) async throws -> WireTestServer {
        try await WireTestServer.start(tls: try certificate.serverContext()) { _ in
            [.send(WireTestServer.ok(UpstreamTargetLiveTests.chatAnswer))]
        }
    }

    @Test func aSelfSignedUpstreamIsRefusedUnlessItsCAFileNamesTheCertificate() async throws {
        let certificate = try TestCertificateFiles(subjectAltName: "DNS:localhost,IP:127.0.0.1")
        defer { certificate.remove() }
        let server = try await Self.tlsServer(certificate)
        let byName = "https://localhost:\(server.port)/v1"

        let refused = try await Self.chat(try Self.configuration(baseURL: byName, caFile: nil))
        #expect(refused.status == .badGateway)
        #expect(refused.code == "upstream_connect_failed")
        #expect(refused.message.contains("TLS handshake with localhost:\(server.port) failed"), "\(refused.message)")
        #expect(server.requests.isEmpty)

        let trusted = try await Self.chat(try Self.configuration(baseURL: byName, caFile: certificate.certificatePath))
        #expect(trusted.status == .ok)
        // An IP literal is checked against the certificate's IP addresses.
        let byAddress = "https://127.0.0.1:\(server.port)/v1"
        let trustedByAddress = try await Self.chat(
            try Self.configuration(baseURL: byAddress, caFile: certificate.certificatePath)
        )
        #expect(trustedByAddress.status == .ok)
        #expect(server.requests.count == 2)
        #expect(server.requests.allSatisfy { $0.head.headers["authorization"] == ["Bearer sk-cloud-secret"] })
        await server.stop()
    }

    /// Connections and TLS handshakes to each upstream are counted in `/metrics` (what a burst
    /// costs in new connections): kept alive, four requests open at most one per event loop.
    @Test func connectionsAndTLSHandshakesAreCounted() async throws {
        let certificate = try TestCertificateFiles(subjectAltName: "DNS:localhost,IP:127.0.0.1")
        defer { certificate.remove() }
        let server = try await Self.tlsServer(certificate)
        let configuration = try Self.configuration(
            baseURL: "https://localhost:\(server.port)/v1",
            caFile: certificate.certificatePath
        )
        let metrics = try await SidecarHarness.run(configuration) { client, _, _ in
            for index in 0..<4 {
                let body = SidecarHarness.chatBody("question \(index)")
                let status = try await client.execute(
                    uri: "/v1/chat/completions",
                    method: .post,
                    headers: Self.json,
                    body: body
                ) { $0.status }
                #expect(status == .ok)
            }
            return try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
        }
        func value(_ name: String) -> Int? {
            let prefix = "\(name){endpoint=\"localhost:\(server.port)\"} "
            let line = metrics.split(separator: "\n").first { $0.hasPrefix(prefix) }
            return line.flatMap { Double($0.dropFirst(prefix.count)) }.map { Int($0) }
        }
        let accepted = server.stats.withLock { $0.accepted }
        #expect(server.requests.count == 4)
        #expect((1...2).contains(accepted))
        #expect(value("llm_sidecar_upstream_connections_opened_total") == accepted)
        #expect(value("llm_sidecar_upstream_tls_handshakes_total") == accepted)
        await server.stop()
    }

    @Test func theCAFileDoesNotTurnOffHostNameVerification() async throws {
        // Trusted (it is its own CA), but issued to another name, without an IP address.
        let otherName = try TestCertificateFiles(commonName: "other.example", subjectAltName: "DNS:other.example")
        defer { otherName.remove() }
        let server = try await Self.tlsServer(otherName)
        for baseURL in ["https://localhost:\(server.port)/v1", "https://127.0.0.1:\(server.port)/v1"] {
            let answer = try await Self.chat(
                try Self.configuration(baseURL: baseURL, caFile: otherName.certificatePath)
            )
            #expect(answer.status == .badGateway, "\(baseURL)")
            #expect(answer.code == "upstream_connect_failed", "\(baseURL)")
            #expect(answer.message.contains("TLS handshake with"), "\(answer.message)")
        }
        // Issued to localhost only: the IP address is not in it.
        let nameOnly = try TestCertificateFiles(subjectAltName: "DNS:localhost")
        defer { nameOnly.remove() }
        let nameOnlyServer = try await Self.tlsServer(nameOnly)
        let byAddress = try await Self.chat(
            try Self.configuration(
                baseURL: "https://127.0.0.1:\(nameOnlyServer.port)/v1",
                caFile: nameOnly.certificatePath
            )
        )
        #expect(byAddress.status == .badGateway)
        #expect(server.requests.isEmpty && nameOnlyServer.requests.isEmpty)
        await server.stop()
        await nameOnlyServer.stop()
    }

    @Test func aCAFileTrustsOnlyItsOwnCertificates() async throws {
        let served = try TestCertificateFiles(subjectAltName: "DNS:localhost,IP:127.0.0.1")
        let other = try TestCertificateFiles(subjectAltName: "DNS:localhost,IP:127.0.0.1")
        defer {
            served.remove()
            other.remove()
        }
        let server = try await Self.tlsServer(served)
        let answer = try await Self.chat(
            try Self.configuration(baseURL: "https://localhost:\(server.port)/v1", caFile: other.certificatePath)
        )
        #expect(answer.status == .badGateway)
        #expect(server.requests.isEmpty)
        await server.stop()
    }
}
