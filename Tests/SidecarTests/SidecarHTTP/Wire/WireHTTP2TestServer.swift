import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

/// A TLS server that speaks HTTP/2 to clients that choose `h2` (and HTTP/1.1 to the others, when
/// `http/1.1` is among its protocols), for the pool's HTTP/2 tests. Each request is answered by
/// a script of steps, so tests can stream, stall, reset a stream or drop the connection.
final class WireHTTP2TestServer: Sendable {
    enum Step: Sendable {
        case head(HTTPResponseStatus)
        case body(String)
        case delay(TimeAmount)
        case end
        /// RST_STREAM on this stream only.
        case resetStream
        /// Closes the whole connection (every stream on it).
        case closeConnection
        /// GOAWAY on the connection: this stream and those before it are still answered, no
        /// new one is taken.
        case goAway
    }

    struct Request: Sendable {
        var uri: String
        var body: String
        var authority: String
        var authorization: String
        var overHTTP2: Bool
    }

    struct Stats: Sendable {
        var connections = 0
        var http2Streams = 0
        var http1Requests = 0
        var openStreams = 0
        var mostOpenStreams = 0
        var requests: [Request] = []
    }

    typealias Behaviour = @Sendable (Request) -> [Step]

    let stats = Mutex(Stats())
    private let behaviour: Behaviour
    private let channel: Mutex<(any Channel)?> = Mutex(nil)
    private let boundPort = Mutex(0)

    var port: Int { self.boundPort.withLock { $0 } }
    var snapshot: Stats { self.stats.withLock { $0 } }

    private init(behaviour: @escaping Behaviour) {
        self.behaviour = behaviour
    }

    /// A 200 with `body`, in one DATA frame.
    static let ok: Behaviour = { request in [.head(.ok), .body("ok:\(request.uri)"), .end] }

    static func start(
        certificate: TestCertificateFiles,
        protocols: [String] = ["h2"],
        maxConcurrentStreams: Int = 100,
        behaviour: @escaping Behaviour = WireHTTP2TestServer.ok
    ) async throws -> WireHTTP2TestServer {
        let server = WireHTTP2TestServer(behaviour: behaviour)
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificate.certificatePath).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: certificate.keyPath, format: .pem))
        )
        tls.applicationProtocols = protocols
        let context = try NIOSSLContext(configuration: tls)
        var settings = NIOHTTP2Handler.ConnectionConfiguration()
        settings.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 1 << 16),
        ]
        let connection = settings
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                server.stats.withLock { $0.connections += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLServerHandler(context: context))
                    try sync.addHandler(
                        ApplicationProtocolNegotiationHandler { result, channel in
                            channel.eventLoop.makeCompletedFuture {
                                let sync = channel.pipeline.syncOperations
                                if case .negotiated("h2") = result {
                                    _ = try sync.configureHTTP2Pipeline(
                                        mode: .server,
                                        connectionConfiguration: connection,
                                        streamConfiguration: .init()
                                    ) { stream in
                                        stream.eventLoop.makeCompletedFuture {
                                            try stream.pipeline.syncOperations.addHandlers([
                                                HTTP2FramePayloadToHTTP1ServerCodec(),
                                                StreamHandler(server: server, overHTTP2: true),
                                            ])
                                        }
                                    }
                                } else {
                                    try sync.configureHTTPServerPipeline()
                                    try sync.addHandler(StreamHandler(server: server, overHTTP2: false))
                                }
                            }
                        }
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        server.channel.withLock { $0 = channel }
        server.boundPort.withLock { $0 = channel.localAddress?.port ?? 0 }
        return server
    }

    func stop() async {
        let channel = self.channel.withLock { $0 }
        try? await channel?.close()
    }

    /// Answers one request (an HTTP/2 stream, or an HTTP/1.1 request) by its script.
    private final class StreamHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let server: WireHTTP2TestServer
        let overHTTP2: Bool
        var request = Request(uri: "", body: "", authority: "", authorization: "", overHTTP2: false)
        var counted = false

        init(server: WireHTTP2TestServer, overHTTP2: Bool) {
            self.server = server
            self.overHTTP2 = overHTTP2
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch self.unwrapInboundIn(data) {
            case .head(let head):
                self.request = Request(
                    uri: head.uri,
                    body: "",
                    authority: head.headers["host"].first ?? "",
                    authorization: head.headers["authorization"].first ?? "",
                    overHTTP2: self.overHTTP2
                )
                self.counted = self.overHTTP2
                self.server.stats.withLock { stats in
                    if self.overHTTP2 {
                        stats.http2Streams += 1
                        stats.openStreams += 1
                        stats.mostOpenStreams = max(stats.mostOpenStreams, stats.openStreams)
                    } else {
                        stats.http1Requests += 1
                    }
                }
            case .body(let buffer):
                self.request.body += String(buffer: buffer)
            case .end:
                let request = self.request
                self.server.stats.withLock { $0.requests.append(request) }
                self.run(self.server.behaviour(request)[...], context: context)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            if self.counted {
                self.counted = false
                self.server.stats.withLock { $0.openStreams -= 1 }
            }
            context.fireChannelInactive()
        }

        private func run(_ steps: ArraySlice<Step>, context: ChannelHandlerContext) {
            var steps = steps
            while let step = steps.popFirst() {
                switch step {
                case .head(let status):
                    var headers: HTTPHeaders = ["content-type": "text/plain"]
                    if !self.overHTTP2 { headers.add(name: "transfer-encoding", value: "chunked") }
                    let head = HTTPResponseHead(version: .http1_1, status: status, headers: headers)
                    context.writeAndFlush(self.wrapOutboundOut(.head(head)), promise: nil)
                case .body(let text):
                    let body = ByteBuffer(string: text)
                    context.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                case .end:
                    context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
                case .delay(let amount):
                    let rest = steps
                    let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                    context.eventLoop.scheduleTask(in: amount) {
                        bound.value.0.run(rest, context: bound.value.1)
                    }
                    return
                case .resetStream:
                    context.close(promise: nil)
                    return
                case .goAway:
                    let id = (try? context.channel.syncOptions?.getOption(HTTP2StreamChannelOptions.streamID))
                    let frame = HTTP2Frame(
                        streamID: .rootStream,
                        payload: .goAway(lastStreamID: id ?? .rootStream, errorCode: .noError, opaqueData: nil)
                    )
                    context.channel.parent?.writeAndFlush(frame, promise: nil)
                case .closeConnection:
                    // A stream's parent is the connection; an HTTP/1.1 channel's is the listener.
                    ((self.overHTTP2 ? context.channel.parent : nil) ?? context.channel).close(promise: nil)
                    return
                }
            }
        }
    }
}
