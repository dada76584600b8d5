import NIOCore
import NIOHTTP1
import NIOHTTP2

/// One HTTP/2 connection to an upstream that chose `h2` in the TLS handshake: every call on it
/// is a stream of its own, so one warm connection serves a burst of calls with no handshake.
/// It sits in the connection's pipeline after NIOHTTP2's handler and reads the frames of the
/// connection itself (SETTINGS for the streams allowed at once, GOAWAY). The
/// ``UpstreamConnection`` it came from stays the pool's record of the socket. Event-loop
/// confined.
package final class UpstreamHTTP2Connection: ChannelInboundHandler {
    package typealias InboundIn = HTTP2Frame

    /// Streams opened at most at once, whatever the upstream allows (its SETTINGS may lower it).
    package static let streamLimit = 100

    package let pool: UpstreamConnectionPool
    package let endpointState: UpstreamConnectionPool.EndpointState
    private let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    private let channel: any Channel
    /// Calls being answered on it now.
    package private(set) var openStreams = 0
    private var maxStreams = UpstreamHTTP2Connection.streamLimit
    /// The upstream said GOAWAY (or the connection is closing): no new stream.
    package private(set) var isGoingAway = false
    /// Since when no stream has been open; for the idle reaper.
    package var idleSince = NIODeadline.now()
    /// Streams ever opened on it; for tests and for the stale retry.
    package private(set) var streamsStarted = 0
    private var streams: [ObjectIdentifier: UpstreamHTTP2Stream] = [:]

    init(
        pool: UpstreamConnectionPool,
        endpointState: UpstreamConnectionPool.EndpointState,
        multiplexer: NIOHTTP2Handler.StreamMultiplexer,
        channel: any Channel
    ) {
        self.pool = pool
        self.endpointState = endpointState
        self.multiplexer = multiplexer
        self.channel = channel
    }

    /// Whether a new call may start on it now.
    package var hasCapacity: Bool {
        !self.isGoingAway && self.openStreams < self.maxStreams && self.channel.isActive
    }

    /// Starts `call` as a new stream.
    func startStream(_ call: UpstreamCall) {
        self.openStreams += 1
        self.streamsStarted &+= 1
        let stream = UpstreamHTTP2Stream(connection: self, call: call, isOnReusedConnection: self.streamsStarted > 1)
        self.streams[ObjectIdentifier(stream)] = stream
        call.connection = nil
        call.stream = stream
        call.state = .running
        let bound = NIOLoopBound(stream, eventLoop: self.channel.eventLoop)
        let promise = self.channel.eventLoop.makePromise(of: (any Channel).self)
        self.multiplexer.createStreamChannel(promise: promise) { streamChannel in
            do {
                try streamChannel.pipeline.syncOperations.addHandlers([
                    HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: .https), bound.value,
                ])
                return streamChannel.eventLoop.makeSucceededVoidFuture()
            } catch {
                return streamChannel.eventLoop.makeFailedFuture(error)
            }
        }
        promise.futureResult.assumeIsolated().whenFailure { error in
            // No stream (the connection went away first): the call may go elsewhere.
            bound.value.streamFailedToOpen(error)
        }
    }

    /// A stream ended (however it ended); its slot is free.
    func streamClosed(_ stream: UpstreamHTTP2Stream) {
        guard self.streams.removeValue(forKey: ObjectIdentifier(stream)) != nil else { return }
        self.openStreams -= 1
        if self.openStreams == 0 {
            self.idleSince = .now()
            if self.isGoingAway {
                self.channel.close(promise: nil)
                return
            }
        }
        self.pool.http2StreamFreed(self)
    }

    /// Closes the connection (its streams end with it).
    package func close() {
        self.isGoingAway = true
        self.channel.close(promise: nil)
    }

    /// Pool shutdown: every call on it fails with `.cancelled`, then the connection closes.
    func shutdown() {
        self.isGoingAway = true
        for stream in Array(self.streams.values) {
            stream.failForShutdown()
        }
        self.channel.close(promise: nil)
    }

    // MARK: - ChannelHandler

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch frame.payload {
        case .settings(.settings(let settings)):
            for setting in settings where setting.parameter == .maxConcurrentStreams {
                self.maxStreams = max(1, min(setting.value, Self.streamLimit))
            }
            self.pool.http2StreamFreed(self)  // more streams may be allowed now
        case .goAway:
            self.goingAway()
        default:
            break
        }
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A connection error: NIOHTTP2 sent GOAWAY and closes; no new stream goes here.
        self.goingAway()
        context.fireErrorCaught(error)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        self.goingAway()
        context.fireChannelInactive()
    }

    private func goingAway() {
        guard !self.isGoingAway else { return }
        self.isGoingAway = true
        self.pool.http2ConnectionGoingAway(self)
        if self.openStreams == 0 {
            self.channel.close(promise: nil)
        }
    }
}
