import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import SidecarHTTP

/// The listener's pipeline (NIO's request decoder under ``HTTPDecoderHandler``, then
/// ``SidecarConnectionHandler``) on an `EmbeddedChannel`, fed client bytes in pieces.
///
/// The input is a four-byte header, then the bytes the client sends. The header chooses the
/// body limit, whether answers come at once or later, their framing, which are cut short,
/// whether the client half-closes, whether a graceful shutdown starts, whether the connection
/// closes with a request unanswered (and whether the responder ends it anyway), and where the
/// bytes are split. Invariants: no crash; what was written back reads as HTTP/1.1 responses
/// (``HTTPResponseReader``), the final ones in the order they were answered with none
/// missing, each carrying the body it was given; no request over the body limit or at odds
/// with its `Content-Length` is dispatched; one request is answered at a time; nothing is
/// dispatched or rejected once the connection has closed; a request left unanswered at close
/// is cancelled.
package enum HTTPRequestCheck {
    static let target = "http-request"
    static let bodyLimits = [16, 100, 1024, 65536]

    package static func run(_ input: [UInt8]) throws(FuzzFailure) {
        guard input.count >= 4 else { return }
        let flags = input[0]
        let moreFlags = input[1]
        let stream = Array(input[4...])
        var behaviour = FakeDispatcher.Behaviour()
        behaviour.deferAnswers = flags & 0x04 != 0
        behaviour.chunked = flags & 0x08 != 0
        behaviour.abortEvery = [0, 0, 2, 3][Int(flags >> 4) & 3]
        behaviour.answerCancelled = moreFlags & 0x08 != 0
        let answerAfterEachRead = flags & 0x40 != 0
        let halfClose = flags & 0x80 != 0
        let closeWithPending = moreFlags & 0x01 != 0
        let quiesceBeforeLast = moreFlags & 0x02 != 0
        let maxBodyBytes = Self.bodyLimits[Int(flags & 3)]

        let dispatcher = FakeDispatcher(behaviour: behaviour, maxBodyBytes: maxBodyBytes)
        let channel = EmbeddedChannel()
        dispatcher.channel = channel
        var output: [UInt8] = []
        var abandoned = 0
        do {
            try Self.addListenerHandlers(to: channel, dispatcher: dispatcher, maxBodyBytes: maxBodyBytes)
            channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 8088), promise: nil)
            let pieces = Self.pieces(stream, byteByByte: moreFlags & 0x04 != 0, cuts: input[2], input[3])
            for (index, piece) in pieces.enumerated() {
                guard channel.isActive else { break }
                if quiesceBeforeLast && index == pieces.count - 1 {
                    channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
                }
                try channel.writeInbound(ByteBuffer(bytes: piece))
                if answerAfterEachRead { dispatcher.answerPending() }
                try Self.drain(channel, into: &output)
            }
            if halfClose && channel.isActive {
                channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            }
            if !closeWithPending { dispatcher.answerPending() }
            try Self.drain(channel, into: &output)
            channel.close(promise: nil)
            abandoned = dispatcher.abandoned
            // A responder that ends a cancelled request anyway (``FakeDispatcher/Behaviour``),
            // before the closed channel's handlers are removed (the next loop turn).
            dispatcher.answerPending()
            channel.embeddedEventLoop.run()
            try Self.drain(channel, into: &output)
        } catch let failure as FuzzFailure {
            throw failure
        } catch {
            throw Self.failure("the channel failed: \(error)", input)
        }
        if let violation = dispatcher.violations.first {
            throw Self.failure(violation, input)
        }
        if abandoned > 0 {
            throw Self.failure("a request unanswered at close was not cancelled", input)
        }
        try Self.checkResponses(output, dispatcher: dispatcher, input: input)
    }

    /// The listener's handlers, as `SidecarChildChannel` adds them (the one place to follow
    /// changes to their parameters).
    static func addListenerHandlers(
        to channel: EmbeddedChannel,
        dispatcher: FakeDispatcher,
        maxBodyBytes: Int
    ) throws {
        let limits = ListenerLimits(
            maxBodyBytes: maxBodyBytes,
            logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(ClosedConnectionWrites())
        try sync.addHandler(HTTPDecoderHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        try sync.addHandler(SidecarConnectionHandler(dispatcher: dispatcher, limits: limits))
    }

    /// Drops writes once the channel is closed, as a socket does (an `EmbeddedChannel` would
    /// still collect them).
    private final class ClosedConnectionWrites: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            guard context.channel.isActive else {
                promise?.fail(ChannelError.ioOnClosedChannel)
                return
            }
            context.write(data, promise: promise)
        }
    }

    private static func checkResponses(
        _ output: [UInt8],
        dispatcher: FakeDispatcher,
        input: [UInt8]
    ) throws(FuzzFailure) {
        let responses: [HTTPResponseReader.Response]
        do {
            responses = try HTTPResponseReader.read(output)
        } catch {
            throw Self.failure("\(error.message) in \(Self.text(output))", input)
        }
        let finals = responses.filter { $0.status >= 200 }
        for (position, response) in finals.enumerated() {
            guard let sequence = response.field("x-fuzz-seq").flatMap({ Int($0) }), sequence == position + 1 else {
                throw Self.failure(
                    "answer \(position + 1) is \(response.field("x-fuzz-seq") ?? "?") in \(Self.text(output))",
                    input
                )
            }
            guard response.field("x-fuzz-head") != "1" || response.body.isEmpty else {
                throw Self.failure("a body in the answer to HEAD in \(Self.text(output))", input)
            }
            if response.field("x-fuzz-head") == "0", let body = dispatcher.bodies[sequence], response.body != body {
                throw Self.failure("answer \(sequence) carries another body in \(Self.text(output))", input)
            }
        }
    }

    /// The stream in pieces: byte by byte, or cut where the two cut bytes point (0: no cut).
    private static func pieces(_ stream: [UInt8], byteByByte: Bool, cuts: UInt8...) -> [ArraySlice<UInt8>] {
        if byteByByte && stream.count <= 4096 { return stream.indices.map { stream[$0...$0] } }
        let points = Set(cuts.filter { $0 > 0 }.map { Int($0) * stream.count / 256 }).sorted()
        var pieces: [ArraySlice<UInt8>] = []
        var start = 0
        for point in points where point > start {
            pieces.append(stream[start..<point])
            start = point
        }
        pieces.append(stream[start...])
        return pieces
    }

    private static func drain(_ channel: EmbeddedChannel, into output: inout [UInt8]) throws {
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            output += buffer.readableBytesView
        }
    }

    static func failure(_ message: String, _ input: [UInt8]) -> FuzzFailure {
        FuzzFailure(Self.target, "\(message); input \(Self.text(input))")
    }

    static func text(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(600), as: UTF8.self)
        return String(reflecting: bytes.count > 600 ? text + "..." : text)
    }
}
