import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

@testable import SidecarCore

/// Tiny scripted HTTP/1.1 server for the pool tests. Requests are decoded with NIO; responses are raw bytes chosen by
/// a behaviour closure, so tests can send anything (close-delimited bodies, garbage, half responses, silence).
final class WireTestServer: Sendable {
    struct Request: Sendable {
        var head: HTTPRequestHead
        var body: String
        /// Index of the request on its connection (0 for the first).
        var indexOnConnection: Int
        /// Index of the connection (0 for the first accepted).
        var connectionIndex: Int
    }

    enum Action: Sendable {
        case send(String)
        case sendBuffer(ByteBuffer)
        case delay(TimeAmount)
        case close
    }

    struct Stats: Sendable {
        var accepted = 0
        var closed = 0
        var requests: [Request] = []
    }

    typealias Behaviour = @Sendable (Request) -> [Action]

    let stats = Mutex(Stats())
    let behaviour: Behaviour
    private let channel: Mutex<(any Channel)?> = Mutex(nil)
    private let boundPort = Mutex(0)

    var port: Int { self.boundPort.withLock { $0 } }
    var accepted: Int { self.stats.withLock { $0.accepted } }
    var closed: Int { self.stats.withLock { $0.closed } }
    var requests: [Request] { self.stats.withLock { $0.requests } }

    private init(behaviour: @escaping Behaviour) {
        self.behaviour = behaviour
    }

    static func start(tls: NIOSSLContext? = nil, behaviour: @escaping Behaviour) async throws -> WireTestServer {
        let server = WireTestServer(behaviour: behaviour)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        try sync.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
                    try sync.addHandler(ServerHandler(server: server))
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

    /// "HTTP/1.1 200 OK" with Content-Length.
    /// A server answering every request with its own URI as the body, after `delay`.
    static func echoingURI(after delay: TimeAmount) async throws -> WireTestServer {
        try await Self.start { request in [.delay(delay), .send(Self.ok(request.head.uri))] }
    }

    static func ok(_ body: String, status: String = "200 OK", headers: String = "") -> String {
        "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
            + "\(headers)\r\n\(body)"
    }

    fileprivate final class ServerHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = ByteBuffer

        let server: WireTestServer
        var head: HTTPRequestHead?
        var body = ""
        var index = 0
        var connectionIndex = 0

        init(server: WireTestServer) {
            self.server = server
        }

        func channelActive(context: ChannelHandlerContext) {
            self.connectionIndex = self.server.stats.withLock {
                $0.accepted += 1
                return $0.accepted - 1
            }
            context.fireChannelActive()
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.server.stats.withLock { $0.closed += 1 }
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch self.unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                self.body = ""
            case .body(let buffer):
                self.body += String(buffer: buffer)
            case .end:
                guard let head = self.head else { return }
                let request = Request(
                    head: head,
                    body: self.body,
                    indexOnConnection: self.index,
                    connectionIndex: self.connectionIndex
                )
                self.index += 1
                self.server.stats.withLock { $0.requests.append(request) }
                self.run(self.server.behaviour(request)[...], context: context)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }

        func run(_ actions: ArraySlice<WireTestServer.Action>, context: ChannelHandlerContext) {
            var actions = actions
            while let action = actions.popFirst() {
                switch action {
                case .send(let text):
                    context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: text)), promise: nil)
                case .sendBuffer(let buffer):
                    context.writeAndFlush(self.wrapOutboundOut(buffer), promise: nil)
                case .close:
                    context.close(promise: nil)
                    return
                case .delay(let amount):
                    let rest = actions
                    context.eventLoop.assumeIsolated().scheduleTask(in: amount) {
                        self.run(rest, context: context)
                    }
                    return
                }
            }
        }
    }
}

/// Self-signed certificate for "localhost" and 127.0.0.1, generated with openssl.
enum WireTestCertificate {
    static func make() throws -> (certificate: NIOSSLCertificate, key: NIOSSLPrivateKey) {
        let files = try TestCertificateFiles(subjectAltName: "DNS:localhost,IP:127.0.0.1")
        defer { files.remove() }
        guard let certificate = try NIOSSLCertificate.fromPEMFile(files.certificatePath).first else {
            throw NSError(domain: "openssl", code: -1)
        }
        let key = try NIOSSLPrivateKey(file: files.keyPath, format: .pem)
        return (certificate, key)
    }

    /// A new certificate, a server context serving it, and a client configuration trusting it.
    static func serverAndClient() throws -> (server: NIOSSLContext, client: TLSConfiguration) {
        let (certificate, key) = try Self.make()
        let server = try NIOSSLContext(
            configuration: .makeServerConfiguration(
                certificateChain: [.certificate(certificate)],
                privateKey: .privateKey(key)
            )
        )
        var client = TLSConfiguration.makeClientConfiguration()
        client.trustRoots = .certificates([certificate])
        return (server, client)
    }
}
