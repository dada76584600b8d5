import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Testing

@testable import SidecarCore
@testable import SidecarEmbedding
@testable import SidecarHTTP

struct WireOutcome: Sendable {
    var head: HTTPResponseHead?
    var body: String
    var bodyBytes: Int
    var trailers: HTTPHeaders?
    var error: UpstreamError?
    /// "head", "body" (consecutive parts collapsed), "finish", "fail"; "late-..." for anything after the terminal call.
    var events: [String]
    var status: Int? { self.head.map { Int($0.status.code) } }
}

/// Records every delegate call; completes `promise` on the terminal call.
final class WireRecorder: UpstreamResponseDelegate {
    let promise: EventLoopPromise<WireOutcome>
    var head: HTTPResponseHead?
    var body = ByteBuffer()
    var bodyBytes = 0
    var bodyCalls = 0
    var trailers: HTTPHeaders?
    var error: UpstreamError?
    var events: [String] = []
    var terminal = false
    var keepBody = true
    var call: UpstreamCall?
    var onHead: ((WireRecorder) -> Void)?
    var onBody: ((WireRecorder) -> Void)?
    var onFinish: ((WireRecorder) -> Void)?

    init(promise: EventLoopPromise<WireOutcome>) {
        self.promise = promise
    }

    var outcome: WireOutcome {
        WireOutcome(
            head: self.head,
            body: String(buffer: self.body),
            bodyBytes: self.bodyBytes,
            trailers: self.trailers,
            error: self.error,
            events: self.events
        )
    }

    private func record(_ event: String) {
        let name = self.terminal ? "late-\(event)" : event
        if name == "body", self.events.last == "body" { return }
        self.events.append(name)
    }

    func upstreamDidReceiveHead(_ head: HTTPResponseHead) {
        self.record("head")
        self.head = head
        self.onHead?(self)
    }

    func upstreamDidReceiveBody(_ buffer: ByteBuffer) {
        self.record("body")
        self.bodyBytes += buffer.readableBytes
        self.bodyCalls += 1
        if self.keepBody {
            var buffer = buffer
            self.body.writeBuffer(&buffer)
        }
        self.onBody?(self)
    }

    func upstreamDidFinish(trailers: HTTPHeaders?) {
        self.record("finish")
        let wasTerminal = self.terminal
        self.terminal = true
        self.trailers = trailers
        self.onFinish?(self)
        if !wasTerminal { self.promise.succeed(self.outcome) }
    }

    func upstreamDidFail(_ error: UpstreamError) {
        self.record("fail")
        let wasTerminal = self.terminal
        self.terminal = true
        self.error = error
        if !wasTerminal { self.promise.succeed(self.outcome) }
    }
}

struct WireStarted: Sendable {
    var recorder: NIOLoopBound<WireRecorder>
    var outcome: EventLoopFuture<WireOutcome>
}

/// One client event loop + pools, for one test.
final class WireHarness: Sendable {
    let group: MultiThreadedEventLoopGroup
    let loop: any EventLoop
    let pools: UpstreamConnectionPools

    init(
        _ configuration: UpstreamConnectionPools.Configuration = .init(
            connectTimeout: .seconds(2),
            idleTimeout: .seconds(5)
        )
    ) {
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.loop = self.group.next()
        self.pools = UpstreamConnectionPools(group: self.group, configuration: configuration)
    }

    /// A pool allowed one connection per endpoint: calls queue in FIFO order.
    static func singleConnection() -> WireHarness {
        WireHarness(.init(connectTimeout: .seconds(2), idleTimeout: .seconds(5), maxConnectionsPerEndpoint: 1))
    }

    func close() async {
        await self.pools.shutdown()
        try? await self.group.shutdownGracefully()
    }

    static func request(
        _ base: String,
        method: HTTPMethod = .POST,
        uri: String = "/v1/chat/completions",
        headers: HTTPHeaders = ["content-type": "application/json"],
        body: String? = #"{"model":"m"}"#
    ) -> UpstreamWireRequest {
        guard let parsed = UpstreamEndpoint.parse(base) else {
            preconditionFailure("bad test URL \(base)")
        }
        return UpstreamWireRequest(
            endpoint: parsed.endpoint,
            method: method,
            uri: uri,
            headers: headers,
            body: body.map { ByteBuffer(string: $0) },
            upstreamName: "test"
        )
    }

    func start(
        _ request: UpstreamWireRequest,
        configure: @escaping @Sendable (WireRecorder) -> Void = { _ in }
    ) async throws -> WireStarted {
        let pools = self.pools
        return try await self.loop.submit {
            let loop = MultiThreadedEventLoopGroup.currentEventLoop!
            let recorder = WireRecorder(promise: loop.makePromise())
            configure(recorder)
            recorder.call = pools.pool(for: loop).execute(request, delegate: recorder)
            return WireStarted(
                recorder: NIOLoopBound(recorder, eventLoop: loop),
                outcome: recorder.promise.futureResult
            )
        }.get()
    }

    /// Starts every call in one turn of the loop (no connect or handshake completes between them).
    func startAll(_ requests: [UpstreamWireRequest]) async throws -> [WireStarted] {
        let pools = self.pools
        return try await self.loop.submit {
            let loop = MultiThreadedEventLoopGroup.currentEventLoop!
            return requests.map { request in
                let recorder = WireRecorder(promise: loop.makePromise())
                recorder.call = pools.pool(for: loop).execute(request, delegate: recorder)
                let bound = NIOLoopBound(recorder, eventLoop: loop)
                return WireStarted(recorder: bound, outcome: recorder.promise.futureResult)
            }
        }.get()
    }

    func run(
        _ request: UpstreamWireRequest,
        configure: @escaping @Sendable (WireRecorder) -> Void = { _ in }
    ) async throws -> WireOutcome {
        try await self.start(request, configure: configure).outcome.get()
    }

    /// Runs `body` on the loop with the loop's pool.
    func onLoop<T: Sendable>(_ body: @escaping @Sendable (UpstreamConnectionPool) -> T) async throws -> T {
        let pools = self.pools
        let loop = self.loop
        return try await loop.submit { body(pools.pool(for: loop)) }.get()
    }

    /// Completes the recorder's promise of a call that never got a terminal call (cancelled), so it does not leak.
    func finishRecorder(_ started: WireStarted) async throws {
        try await self.loop.submit {
            let recorder = started.recorder.value
            if !recorder.terminal {
                recorder.terminal = true
                recorder.promise.succeed(recorder.outcome)
            }
        }.get()
    }

    func snapshot(_ started: WireStarted) async throws -> WireOutcome {
        try await self.loop.submit { started.recorder.value.outcome }.get()
    }
}

func sleep(ms: Int) async throws {
    try await Task.sleep(for: .milliseconds(ms))
}
