import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOPosix
import SidecarHTTP

/// Probes each upstream's `GET /models` for `llm-sidecar check`, through the same upstream
/// transport the request path uses (connection pool, TLS, timeouts).
public struct UpstreamProbe: Sendable {
    /// One upstream's result.
    public struct Result: Sendable {
        public var upstream: String
        public var baseURL: String
        public var reachable: Bool
        /// `ok`, `HTTP 401`, or what failed.
        public var status: String
        public var latencyMilliseconds: Int?
        /// Model ids the upstream listed.
        public var models: [String]
        /// The config names a key variable that is unset.
        public var missingKeyVariable: String?
    }

    private struct ModelList: Decodable {
        struct Model: Decodable { var id: String }
        var data: [Model]?
        var models: [Model]?
    }

    let directory: UpstreamDirectory
    let timeout: Duration

    public init(directory: UpstreamDirectory, timeout: Duration = .seconds(3)) {
        self.directory = directory
        self.timeout = timeout
    }

    /// Probes every upstream in turn, then closes the connections it opened.
    public func probeAll(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async -> [Result] {
        let timeout = TimeAmount.nanoseconds(self.timeout.saturatingNanoseconds)
        let pools = UpstreamConnectionPools(
            group: group,
            configuration: .init(connectTimeout: timeout, idleTimeout: timeout)
        )
        pools.configureEndpoints(self.directory.probeSettings)
        var results: [Result] = []
        for name in self.directory.names {
            guard let entry = self.directory.entry(name) else { continue }
            results.append(await self.probe(entry, pools: pools, eventLoop: group.next()))
        }
        await pools.shutdown()
        return results
    }

    private func probe(
        _ entry: UpstreamDirectory.Entry,
        pools: UpstreamConnectionPools,
        eventLoop: any EventLoop
    ) async
        -> Result
    {
        var result = Result(
            upstream: entry.name,
            baseURL: entry.baseURL,
            reachable: false,
            status: "",
            latencyMilliseconds: nil,
            models: [],
            missingKeyVariable: entry.missingKeyVariable
        )
        guard let endpoint = entry.endpoint else {
            result.status = "base_url is not an http(s) URL"
            return result
        }
        var headers = HTTPHeaders()
        if let authorization = entry.authorization { headers.add(name: "Authorization", value: authorization) }
        let request = UpstreamWireRequest(
            endpoint: endpoint,
            method: .GET,
            uri: entry.basePath + "/models",
            headers: headers,
            body: nil,
            upstreamName: entry.name
        )
        let started = ContinuousClock.now
        let timeout = TimeAmount.nanoseconds(self.timeout.saturatingNanoseconds)
        let answer = eventLoop.flatSubmit {
            ProbeCall.start(request, transport: pools.pool(for: eventLoop), timeout: timeout, eventLoop: eventLoop)
        }
        do {
            let (status, body) = try await answer.get()
            result.latencyMilliseconds = Int((ContinuousClock.now - started) / .milliseconds(1))
            result.reachable = true
            if status == 200 {
                result.status = "ok"
                if let list = try? JSONDecoder().decode(ModelList.self, from: body) {
                    result.models = (list.data ?? list.models ?? []).map(\.id)
                }
            } else {
                result.status = "HTTP \(status)"
            }
        } catch let error as UpstreamError {
            result.status = error.isDeadline ? "timeout" : error.shortDescription
        } catch {
            result.status = "failed: \(error)"
        }
        return result
    }
}

/// Collects one probe's answer (bounded) on the pool's event loop.
private final class ProbeCall: UpstreamResponseDelegate {
    private let promise: EventLoopPromise<(Int, ByteBuffer)>
    private var status = 0
    private var body = ByteBuffer()
    private var call: (any UpstreamCallHandle)?
    private var timer: Scheduled<Void>?

    private init(promise: EventLoopPromise<(Int, ByteBuffer)>) {
        self.promise = promise
    }

    static func start(
        _ request: UpstreamWireRequest,
        transport: any UpstreamTransport,
        timeout: TimeAmount,
        eventLoop: any EventLoop
    ) -> EventLoopFuture<(Int, ByteBuffer)> {
        let probe = ProbeCall(promise: eventLoop.makePromise())
        probe.call = transport.send(request, delegate: probe)
        probe.timer = eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            probe.call?.cancel()
            probe.upstreamDidFail(
                UpstreamError(.deadlineExceeded, upstream: request.upstreamName, detail: "no answer in time")
            )
        }
        return probe.promise.futureResult
    }

    func upstreamDidReceiveHead(_ head: HTTPResponseHead) {
        self.status = Int(head.status.code)
    }

    func upstreamDidReceiveBody(_ buffer: ByteBuffer) {
        var buffer = buffer
        if self.body.readableBytes < 4 << 20 { self.body.writeBuffer(&buffer) }
    }

    func upstreamDidFinish(trailers: HTTPHeaders?) {
        self.timer?.cancel()
        self.call = nil
        self.promise.succeed((self.status, self.body))
    }

    func upstreamDidFail(_ error: UpstreamError) {
        self.timer?.cancel()
        self.call = nil
        self.promise.fail(error)
    }
}
