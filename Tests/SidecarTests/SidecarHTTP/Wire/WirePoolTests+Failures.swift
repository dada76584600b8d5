import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Testing

@testable import SidecarCore
@testable import SidecarHTTP

private let chatReply = #"{"id":"chatcmpl-1","choices":[{"message":{"content":"hi"}}]}"#

/// The pool when connections fail: refused, timed out, cut, malformed, stale.
extension WirePoolTests {
    @Test func connectionRefused() async throws {
        let port = try closedPort()
        let harness = WireHarness()
        let outcome = try await harness.run(WireHarness.request("http://127.0.0.1:\(port)"))
        let error = try #require(outcome.error)
        #expect(error.code == .connectFailed)
        #expect(error.upstream == "test")
        #expect(error.detail.hasPrefix("cannot connect to 127.0.0.1:\(port): "))
        #expect(outcome.events == ["fail"])
        #expect(try await harness.onLoop { $0.openConnectionCount } == 0)
        await harness.close()
    }

    @Test func connectTimeout() async throws {
        // A listener that never accepts, with its accept queue filled: further SYNs are dropped, so connects hang.
        // (Non-routable addresses are intercepted by this sandbox and answer immediately.)
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 0)
            .serverChannelOption(.autoRead, value: false)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(listener.localAddress?.port)
        var fillers: [any Channel] = []
        for _ in 0..<4 {
            if let filler = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.milliseconds(100)).connect(host: "127.0.0.1", port: port).get()
            {
                fillers.append(filler)
            }
        }
        let harness = WireHarness(.init(connectTimeout: .milliseconds(200), idleTimeout: .seconds(5)))
        let started = ContinuousClock.now
        let outcome = try await harness.run(WireHarness.request("http://127.0.0.1:\(port)"))
        let error = try #require(outcome.error)
        #expect(error.code == .connectTimeout)
        #expect(error.detail == "connect timed out")
        #expect(outcome.events == ["fail"])
        #expect(ContinuousClock.now - started >= .milliseconds(190))
        #expect(ContinuousClock.now - started < .seconds(2))
        #expect(try await harness.onLoop { $0.openConnectionCount } == 0)
        await harness.close()
        for filler in fillers {
            try? await filler.close()
        }
        try? await listener.close()
    }

    @Test func idleTimeoutAfterHead() async throws {
        let server = try await WireTestServer.start { _ in [.send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab")] }
        let harness = WireHarness(.init(connectTimeout: .seconds(2), idleTimeout: .milliseconds(300)))
        let started = ContinuousClock.now
        let outcome = try await harness.run(WireHarness.request("http://127.0.0.1:\(server.port)"))
        let error = try #require(outcome.error)
        #expect(error.code == .deadlineExceeded)
        #expect(error.detail == "read timed out after 300 ms")
        #expect(outcome.events == ["head", "body", "fail"])
        #expect(ContinuousClock.now - started >= .milliseconds(290))
        try await sleep(ms: 100)
        #expect(server.closed == 1)
        #expect(try await harness.onLoop { $0.openConnectionCount } == 0)
        await harness.close()
        await server.stop()
    }

    @Test func serverClosesMidBody() async throws {
        let server = try await WireTestServer.start { _ in
            [.send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"), .delay(.milliseconds(20)), .close]
        }
        let harness = WireHarness()
        let outcome = try await harness.run(WireHarness.request("http://127.0.0.1:\(server.port)"))
        let error = try #require(outcome.error)
        #expect(error.code == .connectionClosed)
        #expect(error.detail == "connection closed mid-response")
        #expect(outcome.events == ["head", "body", "fail"])
        #expect(outcome.body == "abc")
        await harness.close()
        await server.stop()
    }

    @Test func serverClosesBeforeResponseOnFreshConnectionIsNotRetried() async throws {
        let server = try await WireTestServer.start { _ in [.close] }
        let harness = WireHarness()
        let outcome = try await harness.run(WireHarness.request("http://127.0.0.1:\(server.port)"))
        #expect(outcome.error?.code == .connectionClosed)
        #expect(outcome.error?.detail == "connection closed by upstream")
        #expect(server.accepted == 1)
        await harness.close()
        await server.stop()
    }

    @Test func malformedResponse() async throws {
        let server = try await WireTestServer.start { _ in [.send("NOT HTTP AT ALL\r\n\r\n")] }
        let harness = WireHarness()
        let outcome = try await harness.run(WireHarness.request("http://127.0.0.1:\(server.port)"))
        #expect(outcome.error?.code == .other)
        #expect(outcome.error?.detail.hasPrefix("malformed response: ") == true)
        #expect(outcome.events == ["fail"])
        await harness.close()
        await server.stop()
    }

    @Test func staleKeepAliveIsRetriedOnce() async throws {
        // Second request on any connection: the server closes without answering (the keep-alive race).
        let server = try await WireTestServer.start { request in
            request.indexOnConnection == 0 ? [.send(WireTestServer.ok("c\(request.connectionIndex)"))] : [.close]
        }
        let harness = WireHarness()
        let request = WireHarness.request("http://127.0.0.1:\(server.port)")
        #expect(try await harness.run(request).body == "c0")
        let second = try await harness.run(request)
        #expect(second.error == nil)
        #expect(second.body == "c1")
        #expect(second.events == ["head", "body", "finish"])
        #expect(server.accepted == 2)
        #expect(server.requests.count == 3)
        await harness.close()
        await server.stop()
    }

    @Test func staleKeepAliveAfterServerClosesIdleConnection() async throws {
        // The server closes right after each response (without saying so); the next call is issued in the same
        // loop tick as the finish, so it lands on the dying connection and must be retried transparently.
        let server = try await WireTestServer.start { request in
            [.send(WireTestServer.ok("c\(request.connectionIndex)")), .close]
        }
        let harness = WireHarness()
        let request = WireHarness.request("http://127.0.0.1:\(server.port)")
        let nested = try await harness.loop.flatSubmit { () -> EventLoopFuture<WireOutcome> in
            let loop = harness.loop
            let pool = harness.pools.pool(for: loop)
            let second = loop.makePromise(of: WireOutcome.self)
            let first = WireRecorder(promise: loop.makePromise())
            first.onFinish = { _ in
                _ = pool.execute(request, delegate: WireRecorder(promise: second))
            }
            _ = pool.execute(request, delegate: first)
            return second.futureResult
        }.get()
        #expect(nested.error == nil)
        #expect(nested.body == "c1")
        #expect(server.accepted == 2)
        // A third call later: the idle connection closed by the server was dropped from the idle list.
        try await sleep(ms: 100)
        #expect(try await harness.onLoop { $0.idleConnectionCount(for: request.endpoint) } == 0)
        let third = try await harness.run(request)
        #expect(third.body == "c2" && third.error == nil)
        #expect(server.requests.count == 3)
        await harness.close()
        await server.stop()
    }
}
