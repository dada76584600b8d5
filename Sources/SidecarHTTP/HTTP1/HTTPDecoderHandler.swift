import NIOCore
import NIOHTTP1

/// Runs one of NIO's HTTP/1.1 decoders (llhttp) as a plain channel handler: the request decoder
/// on client connections, the response decoder on upstream connections.
///
/// NIO's own driver, `ByteToMessageHandler`, is generic code compiled inside NIOCore: it is not
/// specialised for the decoder and looked up generic type metadata on every read (about 5% of
/// the sidecar's CPU per proxied request in a profile). This handler does the same job for an
/// HTTP decoder, which consumes every byte it is given (llhttp keeps partial heads itself):
///
/// - bytes that arrive while a decode is on the stack (a handler answering from inside it) are
///   decoded right after it, in order;
/// - request heads written towards the upstream while a response is being decoded are handed
///   to the response decoder after it (it needs each request's method, for `HEAD`);
/// - end of input (`channelInactive`, or `inputClosed` on a half-closed connection) is decoded
///   as end of input once, after any decode in progress: close-delimited bodies end there, and
///   a message cut short is an error;
/// - after a parse error nothing more is decoded; the error goes down the pipeline.
///
/// Not generic (a generic handler is called through unspecialised witnesses again): the decoder
/// is held as an existential, and ``UpstreamResponseDecoderHandler`` adds the write side.
package class HTTPDecoderHandler: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    /// Unused: the decoder fires its HTTP parts itself.
    package typealias InboundOut = ByteBuffer

    private var decoder: any ByteToMessageDecoder
    /// Bytes not yet decoded: received during a decode, or left over by one.
    private var pending: ByteBuffer?
    private var isDecoding = false
    private var failed = false
    private var seenEOF = false
    private var finished = false

    /// Bytes the decoder left undecoded beyond this fail the connection.
    package static let maximumUndecodedBytes = 1 << 20

    package struct UndecodedBytesError: Error {
        package let count: Int
    }

    package init(_ decoder: any ByteToMessageDecoder) {
        self.decoder = decoder
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        self.decoder.decoderAdded(context: context)
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        self.finished = true
        self.decoder.decoderRemoved(context: context)
    }

    /// Called on every read before it is decoded (the listener's request-read deadline starts
    /// at a request's first byte, long before its head is whole).
    package var onRead: (() -> Void)?

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.failed, !self.finished else { return }
        self.onRead?()
        var buffer = self.unwrapInboundIn(data)
        if self.isDecoding || self.pending != nil {
            if self.pending == nil {
                self.pending = buffer
            } else {
                self.pending?.writeBuffer(&buffer)
            }
            if self.isDecoding { return }
            buffer = self.pending ?? buffer
            self.pending = nil
        }
        self.decode(context: context, buffer: buffer)
    }

    package func channelInactive(context: ChannelHandlerContext) {
        self.endOfInput(context: context)
        context.fireChannelInactive()
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            self.endOfInput(context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func endOfInput(context: ChannelHandlerContext) {
        self.seenEOF = true
        // Inside a decode (a handler closed the channel from it), the end is decoded after it.
        guard !self.isDecoding else { return }
        self.decodeLast(context: context)
    }

    /// Decodes `buffer`, then whatever arrived meanwhile, then end of input if it came.
    private func decode(context: ChannelHandlerContext, buffer: ByteBuffer) {
        var buffer = buffer
        self.isDecoding = true
        defer { self.isDecoding = false }
        while !self.failed && !self.finished {
            do {
                _ = try self.decoder.decode(context: context, buffer: &buffer)
            } catch {
                return self.fail(error, context: context)
            }
            self.decoded()
            if buffer.readableBytes > 0 {
                // The decoder keeps partial messages itself; bytes it left (it stops after a
                // protocol upgrade, which the sidecar never accepts) are kept, up to a bound.
                buffer.discardReadBytes()
                if var more = self.pending {
                    buffer.writeBuffer(&more)
                    self.pending = nil
                }
                guard buffer.readableBytes <= Self.maximumUndecodedBytes else {
                    return self.fail(UndecodedBytesError(count: buffer.readableBytes), context: context)
                }
                self.pending = buffer
                break
            }
            guard let more = self.pending else { break }
            self.pending = nil
            buffer = more
        }
        if self.seenEOF {
            self.isDecoding = false
            self.decodeLast(context: context)
        }
    }

    private func decodeLast(context: ChannelHandlerContext) {
        guard !self.failed, !self.finished else { return }
        self.finished = true
        var buffer = self.pending ?? context.channel.allocator.buffer(capacity: 0)
        self.pending = nil
        self.isDecoding = true
        defer { self.isDecoding = false }
        do {
            _ = try self.decoder.decodeLast(context: context, buffer: &buffer, seenEOF: true)
        } catch {
            self.fail(error, context: context)
        }
    }

    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        self.failed = true
        self.pending = nil
        context.fireErrorCaught(error)
    }

    /// Whether a decode is on the stack (the decoder must not be touched then).
    package var decoding: Bool { self.isDecoding }

    /// Called after each decode, with the decoder free again.
    package func decoded() {}
}

/// The response decoder of an upstream connection, which also sees the requests going out: it
/// needs each request's method (a response to `HEAD` has no body).
package final class UpstreamResponseDecoderHandler: HTTPDecoderHandler, ChannelOutboundHandler {
    package typealias OutboundIn = HTTPClientRequestPart
    package typealias OutboundOut = HTTPClientRequestPart

    private let responseDecoder: HTTPResponseDecoder
    /// Request heads written while a response was being decoded.
    private var queuedHeads: [HTTPRequestHead] = []

    package init(_ decoder: HTTPResponseDecoder) {
        self.responseDecoder = decoder
        super.init(decoder)
    }

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .head(let head) = self.unwrapOutboundIn(data) {
            if self.decoding {
                self.queuedHeads.append(head)
            } else {
                self.responseDecoder.write(data: .head(head))
            }
        }
        context.write(data, promise: promise)
    }

    package override func decoded() {
        guard !self.queuedHeads.isEmpty else { return }
        for head in self.queuedHeads {
            self.responseDecoder.write(data: .head(head))
        }
        self.queuedHeads.removeAll(keepingCapacity: true)
    }
}
