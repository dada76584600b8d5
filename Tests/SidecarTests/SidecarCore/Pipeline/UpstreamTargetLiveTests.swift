import Foundation
import NIOCore
import Testing

@testable import SidecarCore
@testable import SidecarHTTP

/// A client can never choose where the sidecar connects: every way a request could name another
/// server or climb out of an upstream's base path, sent as raw bytes to the real listener, with
/// an "evil" listener that must see no connection at all and an upstream that must see only
/// paths under its configured base, with its own Host.
@Suite(.serialized) struct UpstreamTargetLiveTests {
    static let chatAnswer =
        #"{"id":"c-1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","#
        + #""content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#

    static func configuration(upstreamPort: Int) throws -> SidecarConfiguration {
        try SidecarConfiguration(
            toml: """
                [[upstreams]]
                name = "ollama"
                base_url = "http://127.0.0.1:\(upstreamPort)/ollama/v1"
                [[upstreams]]
                name = "cloud"
                base_url = "http://127.0.0.1:\(upstreamPort)/cloud/v1"
                api_key_env = "CLOUD_KEY"
                [[models]]
                name = "small-local"
                upstream = "ollama"
                [[models]]
                name = "big-cloud"
                upstream = "cloud"
                [[models]]
                name = "embed-cloud"
                upstream = "cloud"
                [routing]
                tiers = [ { max_score = 0.40, model = "small-local" }, { max_score = 1.01, model = "big-cloud" } ]
                default_upstream = "cloud"
                ollama_upstream = "ollama"
                # Model management forwarded too: even then, only to the configured upstream.
                ollama_admin = true
                """,
            file: "test.conf"
        )
    }

    /// `method target` with the given extra header lines and body, closing after the answer.
    static func request(_ method: String, _ target: String, headers: [String] = [], body: String = "") -> String {
        var lines = ["\(method) \(target) HTTP/1.1", "Host: 127.0.0.1", "Connection: close"] + headers
        if !body.isEmpty || method == "POST" {
            lines += ["Content-Type: application/json", "Content-Length: \(body.utf8.count)"]
        }
        return lines.joined(separator: "\r\n") + "\r\n\r\n" + body
    }

    @Test func noRequestMakesTheSidecarConnectAnywhereButTheConfiguredUpstream() async throws {
        let evil = try await WireTestServer.start { _ in [.send(WireTestServer.ok(#"{"evil":true}"#))] }
        let upstream = try await WireTestServer.start { request in
            let body =
                request.head.uri.hasSuffix("/chat/completions") ? Self.chatAnswer : #"{"object":"list","data":[]}"#
            return [.send(WireTestServer.ok(body))]
        }
        let evilAddress = "127.0.0.1:\(evil.port)"
        let chat = #"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#
        let urlModelChat = #"{"model":"http://\#(evilAddress)/v1","messages":[{"role":"user","content":"hi"}]}"#

        // Refused before anything is forwarded.
        let refused: [String] = [
            Self.request("GET", "http://\(evilAddress)/v1/files"),
            Self.request("POST", "http://\(evilAddress)/v1/chat/completions", body: chat),
            Self.request("POST", "https://\(evilAddress)/api/generate", body: "{}"),
            Self.request("GET", "http://127.0.0.1:\(upstream.port)@\(evilAddress)/v1/files"),
            Self.request("GET", "http:/v1/files"),
            Self.request("CONNECT", evilAddress),
            Self.request("CONNECT", "\(evilAddress):443"),
            Self.request("OPTIONS", "*"),
            Self.request("GET", "//\(evilAddress)/x"),
            Self.request("GET", "//\(evilAddress)"),
            Self.request("GET", "/v1//\(evilAddress)/x"),
            Self.request("GET", "/v1/../.."),
            Self.request("GET", "/v1/../../\(evilAddress)/x"),
            Self.request("GET", "/v1/./files"),
            Self.request("POST", "/api/../v1/chat/completions", body: chat),
            Self.request("GET", "/api/%2e%2e/"),
            Self.request("GET", "/api/%2E%2e/%2e%2E/x"),
            Self.request("GET", "/api/.%2e/v1/files"),
            Self.request("GET", "/v1/%2f%2f\(evilAddress)/x"),
            Self.request("GET", "/v1/%5c%5c\(evilAddress)"),
            Self.request("GET", "/v1\\..\\..\\x"),
            Self.request("GET", "/v1/files@\(evilAddress)"),
            Self.request("GET", "/v1/models@\(evilAddress)"),
            Self.request("GET", "/@\(evilAddress)/v1/files"),
            Self.request("GET", "/v1/files%40\(evilAddress)"),
            Self.request("GET", "/v1/files%0d%0aHost:%20\(evilAddress)"),
            Self.request("GET", "/v1/files%00"),
        ]
        // Forwarded, but only ever to the configured upstream, under its base path.
        let forwarded: [String] = [
            Self.request(
                "GET",
                "/v1/files",
                headers: [
                    "Host: \(evilAddress)", "X-Forwarded-Host: \(evilAddress)", "X-Forwarded-For: 127.0.0.1",
                    "X-Forwarded-Proto: http", "X-Forwarded-Port: \(evil.port)",
                    "Forwarded: for=127.0.0.1;host=\(evilAddress);proto=http", "X-Original-URL: http://\(evilAddress)/",
                    "X-Rewrite-URL: //\(evilAddress)/", "X-Sidecar-Upstream: http://\(evilAddress)",
                    "Proxy-Authorization: Basic ZXZpbDpldmls",
                ]
            ),
            Self.request("GET", "/v1/files?url=http://\(evilAddress)/&next=//\(evilAddress)"),
            Self.request("GET", "/v1", headers: ["Host: \(evilAddress)"]),
            Self.request("POST", "/v1/chat/completions", headers: ["Host: \(evilAddress)"], body: urlModelChat),
            Self.request("POST", "/v1/chat/completions", headers: ["X-Sidecar-Pin: 1"], body: urlModelChat),
            Self.request(
                "POST",
                "/v1/chat/completions",
                body: #"{"model":"pin/http://\#(evilAddress)/v1","messages":[{"role":"user","content":"hi"}]}"#
            ),
            Self.request("POST", "/v1/embeddings", body: #"{"model":"http://\#(evilAddress)/","input":"hi"}"#),
            Self.request(
                "POST",
                "/api/pull",
                headers: ["Host: \(evilAddress)"],
                body: #"{"model":"http://\#(evilAddress)/library/evil:latest","insecure":true}"#
            ),
            Self.request("POST", "/api/generate", body: #"{"model":"\#(evilAddress)/evil","prompt":"hi"}"#),
            Self.request(
                "GET",
                "/v1/files",
                headers: [
                    "Upgrade: h2c", "Connection: Upgrade, HTTP2-Settings", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
                ]
            ),
        ]

        let environment = ["CLOUD_KEY": "sk-cloud-secret"]
        try await SidecarHarness.run(try Self.configuration(upstreamPort: upstream.port), environment: environment) {
            _,
            port,
            _ in
            for request in refused {
                let answer = try await RawHTTPClient.exchange(port: port, request)
                let firstLine = request.prefix { $0 != "\r" }
                #expect(answer.status == 400, "\(firstLine): \(answer.text)")
                #expect(
                    answer.body.contains(#""code":"invalid_request_target""#)
                        || answer.body.contains(#""code":"bad_http_request""#),
                    "\(firstLine): \(answer.text)"
                )
                #expect(answer.body.contains(#""type":"invalid_request_error""#), "\(firstLine)")
            }
            for request in forwarded {
                let answer = try await RawHTTPClient.exchange(port: port, request)
                let firstLine = request.prefix { $0 != "\r" }
                #expect(answer.status == 200, "\(firstLine): \(answer.text)")
                #expect(!answer.body.contains("evil\":true"), "\(firstLine)")
            }
            // The same through a second request on one kept-alive connection: a refused target
            // closes the connection, so nothing after it is read as another request.
            let pipelined =
                Self.request("GET", "http://\(evilAddress)/v1/files").replacingOccurrences(
                    of: "Connection: close",
                    with: "Connection: keep-alive"
                ) + Self.request("GET", "/v1/files")
            let answer = try await RawHTTPClient.exchange(port: port, pipelined)
            #expect(answer.status == 400)
            #expect(answer.text.components(separatedBy: "HTTP/1.1 ").count == 2, "\(answer.text)")
        }

        #expect(evil.accepted == 0, "the evil listener was connected to")
        let received = upstream.requests
        #expect(received.count == forwarded.count, "\(received.map { "\($0.head.method) \($0.head.uri)" })")
        for request in received {
            let uri = request.head.uri
            #expect(uri.hasPrefix("/ollama/") || uri.hasPrefix("/cloud/"), "\(uri)")
            #expect(RequestTarget.problem(uri) == nil, "\(uri)")
            #expect(request.head.headers["host"] == ["127.0.0.1:\(upstream.port)"], "\(uri)")
            #expect(!request.head.headers.contains(name: "proxy-authorization"))
            #expect(!request.head.headers.contains(name: "x-sidecar-upstream"))
            // Nothing of the network behind the client goes upstream.
            for name in ["x-forwarded-host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-port", "forwarded"] {
                #expect(!request.head.headers.contains(name: name), "\(uri): \(name)")
            }
        }
        #expect(received.map(\.head.uri).contains("/ollama/api/pull"))
        #expect(received.map(\.head.uri).contains("/cloud/v1"))
        #expect(received.map(\.head.uri).contains("/cloud/v1/files?url=http://\(evilAddress)/&next=//\(evilAddress)"))
        await evil.stop()
        await upstream.stop()
    }
}
