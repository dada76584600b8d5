import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import SidecarCore
@testable import SidecarHTTP

/// Requests through the whole sidecar to an `https://` upstream that chooses HTTP/2: answers and
/// streams arrive as over HTTP/1.1, with the key injected, and the calls share connections.
@Suite(.serialized) struct UpstreamHTTP2LiveTests {
    static let stream =
        #"data: {"id":"c-1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"#
        + #""delta":{"role":"assistant","content":"hel"}}]}"# + "\n\n"
        + #"data: {"id":"c-1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"#
        + #""delta":{"content":"lo"},"finish_reason":"stop"}]}"# + "\n\n" + "data: [DONE]\n\n"

    @Test(arguments: [true, false])
    func chatsAndStreamsGoOverHTTP2UnlessItIsOff(http2: Bool) async throws {
        let certificate = try TestCertificateFiles(subjectAltName: "DNS:localhost,IP:127.0.0.1")
        defer { certificate.remove() }
        let server = try await WireHTTP2TestServer.start(certificate: certificate, protocols: ["h2", "http/1.1"]) {
            request in
            guard request.body.contains(#""stream":true"#) else {
                return [.head(.ok), .body(UpstreamTargetLiveTests.chatAnswer), .end]
            }
            let first = String(Self.stream.prefix(120))
            let rest = String(Self.stream.dropFirst(120))
            return [.head(.ok), .body(first), .delay(.milliseconds(20)), .body(rest), .end]
        }
        var configuration = try UpstreamTLSLiveTests.configuration(
            baseURL: "https://localhost:\(server.port)/v1",
            caFile: certificate.certificatePath
        )
        configuration.upstreams[0].http2 = http2
        let (bodies, metrics) = try await SidecarHarness.run(configuration) { client, _, _ in
            var bodies: [String] = []
            for index in 0..<6 {
                let body = SidecarHarness.chatBody("question \(index)", model: "secure-model", stream: index % 2 == 1)
                bodies.append(
                    try await client.execute(
                        uri: "/v1/chat/completions",
                        method: .post,
                        headers: UpstreamTLSLiveTests.json,
                        body: body
                    ) { response in
                        #expect(response.status == .ok)
                        #expect(response.headers[HTTPField.Name("X-Model-Used")!] == "secure-model")
                        return String(buffer: response.body)
                    }
                )
            }
            let metrics = try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
            return (bodies, metrics)
        }
        let counter = "llm_sidecar_upstream_http2_connections_total{endpoint=\"localhost:\(server.port)\"} "
        let http2Connections = metrics.split(separator: "\n").first { $0.hasPrefix(counter) }
            .flatMap { Double($0.dropFirst(counter.count)) }
        #expect(http2Connections.map { Int($0) } == (http2 ? server.snapshot.connections : nil))
        for (index, body) in bodies.enumerated() {
            if index % 2 == 1 {
                #expect(body.contains(#""content":"hel""#) && body.contains(#""content":"lo""#), "\(body)")
                #expect(body.hasSuffix("data: [DONE]\n\n"), "\(body)")
            } else {
                #expect(body.contains(#""content":"hi""#), "\(body)")
            }
        }
        let stats = server.snapshot
        #expect(stats.requests.count == 6)
        #expect(stats.http2Streams == (http2 ? 6 : 0))
        #expect(stats.http1Requests == (http2 ? 0 : 6))
        #expect(stats.requests.allSatisfy { $0.authorization == "Bearer sk-cloud-secret" })
        #expect(stats.requests.allSatisfy { $0.authority == "localhost:\(server.port)" })
        #expect(stats.connections <= 2)  // one per event loop at most, kept
        await server.stop()
    }
}
