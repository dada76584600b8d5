import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Testing

@testable import SidecarCore
@testable import SidecarHTTP

private let chatReply = #"{"id":"chatcmpl-1","choices":[{"message":{"content":"hi"}}]}"#

@Suite("UpstreamConnectionPool", .serialized)
struct WirePoolTests {
    @Test func plainJSONReplyAndRequestBytes() async throws {
        let server = try await WireTestServer.start { _ in [.send(WireTestServer.ok(chatReply, headers: "X-Up: 1\r\n"))]
        }
        let harness = WireHarness()
        let base = "http://127.0.0.1:\(server.port)/v1"
        var headers: HTTPHeaders = ["content-type": "application/json", "authorization": "Bearer k"]
        headers.add(name: "Content-Length", value: "999")  // wrong on purpose: the pool must replace it
        let outcome = try await harness.run(WireHarness.request(base, headers: headers, body: #"{"a":1}"#))
        #expect(outcome.error == nil)
        #expect(outcome.status == 200)
        #expect(outcome.body == chatReply)
        #expect(outcome.head?.headers["x-up"] == ["1"])
        #expect(outcome.events == ["head", "body", "finish"])
        let request = try #require(server.requests.first)
        #expect(request.head.method == .POST)
        #expect(request.head.uri == "/v1/chat/completions")
        #expect(request.head.headers["host"] == ["127.0.0.1:\(server.port)"])
        #expect(request.head.headers["content-length"] == ["7"])
        #expect(request.head.headers["authorization"] == ["Bearer k"])
        #expect(request.head.headers["connection"] == [])
        #expect(request.head.headers["transfer-encoding"] == [])
        #expect(request.body == #"{"a":1}"#)
        await harness.close()
        await server.stop()
    }

    @Test func reusesOneConnectionForSequentialCalls() async throws {
        let server = try await WireTestServer.start { request in
            [.send(WireTestServer.ok("r\(request.indexOnConnection)"))]
        }
        let harness = WireHarness()
        let request = WireHarness.request("http://127.0.0.1:\(server.port)")
        for index in 0..<100 {
            let outcome = try await harness.run(request)
            #expect(outcome.body == "r\(index)")
        }
        #expect(server.accepted == 1)
        #expect(server.requests.count == 100)
        #expect(try await harness.onLoop { $0.openConnectionCount } == 1)
        #expect(try await harness.onLoop { $0.idleConnectionCount(for: request.endpoint) } == 1)
        await harness.close()
        await server.stop()
    }

    @Test func connectionCloseResponseIsNotReused() async throws {
        let server = try await WireTestServer.start { _ in
            [.send(WireTestServer.ok("x", headers: "Connection: close\r\n"))]
        }
        let harness = WireHarness()
        let request = WireHarness.request("http://127.0.0.1:\(server.port)")
        for _ in 0..<3 {
            let outcome = try await harness.run(request)
            #expect(outcome.body == "x" && outcome.error == nil)
        }
        #expect(server.accepted == 3)
        await harness.close()
        await server.stop()
    }

    @Test func requestConnectionCloseIsNotReused() async throws {
        let server = try await WireTestServer.start { _ in [.send(WireTestServer.ok("x"))] }
        let harness = WireHarness()
        let request = WireHarness.request("http://127.0.0.1:\(server.port)", headers: ["connection": "close"])
        for _ in 0..<2 {
            #expect(try await harness.run(request).body == "x")
        }
        #expect(server.accepted == 2)
        await harness.close()
        await server.stop()
    }

    @Test func http10ResponseWithoutKeepAliveIsNotReused() async throws {
        let server = try await WireTestServer.start { _ in [.send("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")] }
        let harness = WireHarness()
        let request = WireHarness.request("http://127.0.0.1:\(server.port)")
        for _ in 0..<2 {
            #expect(try await harness.run(request).body == "ok")
        }
        #expect(server.accepted == 2)
        await harness.close()
        await server.stop()
    }

    @Test func closeDelimitedBodyFinishes() async throws {
        let server = try await WireTestServer.start { _ in
            [
                .send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello "), .delay(.milliseconds(20)),
                .send("world"), .close,
            ]
        }
        let harness = WireHarness()
        let request = WireHarness.request("http://127.0.0.1:\(server.port)")
        for _ in 0..<2 {
            let outcome = try await harness.run(request)
            #expect(outcome.error == nil)
            #expect(outcome.body == "hello world")
            #expect(outcome.events == ["head", "body", "finish"])
        }
        #expect(server.accepted == 2)
        await harness.close()
        await server.stop()
    }

    @Test func chunkedWithTrailers() async throws {
        let server = try await WireTestServer.start { _ in
            [
                .send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Cost\r\n\r\n5\r\nhello\r\n"),
                .delay(.milliseconds(10)), .send("6\r\n world\r\n0\r\nX-Cost: 42\r\n\r\n"),
            ]
        }
        let harness = WireHarness()
        let request = WireHarness.request("http://127.0.0.1:\(server.port)")
        for _ in 0..<2 {
            let outcome = try await harness.run(request)
            #expect(outcome.error == nil)
            #expect(outcome.body == "hello world")
            #expect(outcome.trailers?["x-cost"] == ["42"])
        }
        #expect(server.accepted == 1)
        await harness.close()
        await server.stop()
    }

    @Test func headAnd204HaveNoBody() async throws {
        let server = try await WireTestServer.start { request in
            if request.head.method == .HEAD {
                return [.send("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")]
            }
            return [.send("HTTP/1.1 204 No Content\r\n\r\n")]
        }
        let harness = WireHarness()
        let base = "http://127.0.0.1:\(server.port)"
        let head = try await harness.run(WireHarness.request(base, method: .HEAD, uri: "/h", body: nil))
        #expect(head.status == 200 && head.bodyBytes == 0 && head.error == nil)
        #expect(head.events == ["head", "finish"])
        let noContent = try await harness.run(WireHarness.request(base, method: .DELETE, uri: "/d", body: nil))
        #expect(noContent.status == 204 && noContent.bodyBytes == 0 && noContent.error == nil)
        let again = try await harness.run(WireHarness.request(base, method: .HEAD, uri: "/h", body: nil))
        #expect(again.status == 200 && again.error == nil)
        #expect(server.accepted == 1)
        #expect(server.requests.map(\.head.headers["content-length"]) == [[], [], []])
        await harness.close()
        await server.stop()
    }

    @Test func informationalHeadsAreSkipped() async throws {
        let server = try await WireTestServer.start { _ in
            [.send("HTTP/1.1 100 Continue\r\n\r\n"), .send(WireTestServer.ok("done"))]
        }
        let harness = WireHarness()
        let outcome = try await harness.run(WireHarness.request("http://127.0.0.1:\(server.port)"))
        #expect(outcome.status == 200 && outcome.body == "done" && outcome.events == ["head", "body", "finish"])
        await harness.close()
        await server.stop()
    }

    @Test func capAndFIFO() async throws {
        let server = try await WireTestServer.echoingURI(after: .milliseconds(30))
        let harness = WireHarness.singleConnection()
        let base = "http://127.0.0.1:\(server.port)"
        let order = try await harness.loop.flatSubmit { () -> EventLoopFuture<[String]> in
            let loop = harness.loop
            let pool = harness.pools.pool(for: loop)
            var futures: [EventLoopFuture<WireOutcome>] = []
            for uri in ["/1", "/2", "/3"] {
                let recorder = WireRecorder(promise: loop.makePromise())
                futures.append(recorder.promise.futureResult)
                _ = pool.execute(WireHarness.request(base, uri: uri), delegate: recorder)
            }
            let bound = NIOLoopBoundBox([String](), eventLoop: loop)
            for future in futures {
                future.assumeIsolated().whenSuccess { bound.value.append($0.body) }
            }
            return EventLoopFuture.andAllSucceed(futures, on: loop).map { bound.value }
        }.get()
        #expect(order == ["/1", "/2", "/3"])
        #expect(server.requests.map(\.head.uri) == ["/1", "/2", "/3"])
        #expect(server.accepted == 1)
        await harness.close()
        await server.stop()
    }

    @Test func cancelStopsDelegateCallsAndClosesConnection() async throws {
        let server = try await WireTestServer.start { _ in
            [.send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"), .delay(.milliseconds(100)), .send("cdefghij")]
        }
        let harness = WireHarness()
        let request = WireHarness.request("http://127.0.0.1:\(server.port)")
        let started = try await harness.start(request) { recorder in
            recorder.onBody = { $0.call?.cancel() }
        }
        try await sleep(ms: 300)
        let snapshot = try await harness.snapshot(started)
        #expect(snapshot.events == ["head", "body"])
        #expect(snapshot.body == "ab")
        #expect(server.closed == 1)
        #expect(try await harness.onLoop { $0.openConnectionCount } == 0)
        // Cancel again: no-op. The next call uses a new connection.
        try await harness.loop.submit { started.recorder.value.call?.cancel() }.get()
        let next = try await harness.run(request)
        #expect(next.body == "abcdefghij")
        #expect(server.accepted == 2)
        try await harness.finishRecorder(started)
        await harness.close()
        await server.stop()
    }

    @Test func cancelQueuedWaiter() async throws {
        let server = try await WireTestServer.echoingURI(after: .milliseconds(100))
        let harness = WireHarness.singleConnection()
        let base = "http://127.0.0.1:\(server.port)"
        let a = try await harness.start(WireHarness.request(base, uri: "/a"))
        let b = try await harness.start(WireHarness.request(base, uri: "/b"))
        let c = try await harness.start(WireHarness.request(base, uri: "/c"))
        try await harness.loop.submit { b.recorder.value.call?.cancel() }.get()
        #expect(try await a.outcome.get().body == "/a")
        #expect(try await c.outcome.get().body == "/c")
        try await sleep(ms: 50)
        #expect(try await harness.snapshot(b).events == [])
        try await harness.finishRecorder(b)
        #expect(server.requests.map(\.head.uri) == ["/a", "/c"])
        #expect(server.accepted == 1)
        await harness.close()
        await server.stop()
    }

    @Test func pauseAndResume() async throws {
        let total = 2 * 1024 * 1024
        let server = try await WireTestServer.start { _ in
            var actions: [WireTestServer.Action] = [.send("HTTP/1.1 200 OK\r\nContent-Length: \(total)\r\n\r\n")]
            let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
            for _ in 0..<(total / chunk.readableBytes) {
                actions.append(.sendBuffer(chunk))
            }
            return actions
        }
        // The idle timeout (200 ms) must not fire while paused for much longer.
        let harness = WireHarness(.init(connectTimeout: .seconds(2), idleTimeout: .milliseconds(200)))
        let started = try await harness.start(WireHarness.request("http://127.0.0.1:\(server.port)")) { recorder in
            recorder.keepBody = false
            recorder.onBody = { recorder in
                if recorder.bodyCalls == 1 { recorder.call?.setReadingPaused(true) }
            }
        }
        try await sleep(ms: 300)
        let first = try await harness.snapshot(started)
        try await sleep(ms: 400)
        let second = try await harness.snapshot(started)
        #expect(first.bodyBytes > 0)
        #expect(first.bodyBytes < total)
        #expect(second.bodyBytes == first.bodyBytes)
        #expect(second.events == ["head", "body"])
        try await harness.loop.submit { started.recorder.value.call?.setReadingPaused(false) }.get()
        let outcome = try await started.outcome.get()
        #expect(outcome.error == nil)
        #expect(outcome.bodyBytes == total)
        #expect(outcome.events == ["head", "body", "finish"])
        await harness.close()
        await server.stop()
    }

    @Test func reapsIdleConnectionsAndCapsIdleList() async throws {
        let server = try await WireTestServer.start { _ in [.delay(.milliseconds(30)), .send(WireTestServer.ok("ok"))] }
        let harness = WireHarness(
            .init(
                connectTimeout: .seconds(2),
                idleTimeout: .seconds(5),
                idleConnectionTimeout: .milliseconds(300),
                maxIdleConnectionsPerEndpoint: 1
            )
        )
        let request = WireHarness.request("http://127.0.0.1:\(server.port)")
        let a = try await harness.start(request)
        let b = try await harness.start(request)
        #expect(try await a.outcome.get().body == "ok")
        #expect(try await b.outcome.get().body == "ok")
        #expect(server.accepted == 2)
        try await sleep(ms: 50)
        #expect(try await harness.onLoop { $0.idleConnectionCount(for: request.endpoint) } == 1)
        #expect(server.closed == 1)
        try await sleep(ms: 500)
        #expect(try await harness.onLoop { $0.idleConnectionCount(for: request.endpoint) } == 0)
        #expect(try await harness.onLoop { $0.openConnectionCount } == 0)
        #expect(server.closed == 2)
        await harness.close()
        await server.stop()
    }

    @Test func shutdownFailsActiveCallsAndClosesIdle() async throws {
        let server = try await WireTestServer.start { request in
            request.head.uri == "/slow"
                ? [.send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")] : [.send(WireTestServer.ok("ok"))]
        }
        let harness = WireHarness()
        let base = "http://127.0.0.1:\(server.port)"
        let slow = try await harness.start(WireHarness.request(base, uri: "/slow"))
        try await sleep(ms: 50)
        // The slow call holds its connection, so this one opens a second connection, which then goes idle.
        #expect(try await harness.run(WireHarness.request(base, uri: "/fast")).body == "ok")
        #expect(try await harness.onLoop { $0.openConnectionCount } == 2)
        #expect(server.accepted == 2)
        await harness.pools.shutdown()
        let outcome = try await slow.outcome.get()
        #expect(outcome.error?.code == .cancelled)
        #expect(outcome.events == ["head", "fail"])
        try await sleep(ms: 100)
        #expect(server.closed == 2)
        let after = try await harness.run(WireHarness.request(base, uri: "/fast"))
        #expect(after.error?.code == .cancelled)
        #expect(server.accepted == 2)
        await harness.pools.shutdown()
        await harness.close()
        await server.stop()
    }
}
