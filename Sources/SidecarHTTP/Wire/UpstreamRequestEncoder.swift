import NIOCore
import NIOHTTP1

/// Writes requests to an upstream as bytes, in place of NIO's `HTTPRequestEncoder`.
///
/// ``UpstreamConnection`` sends a head with `Content-Length` and the whole body, or a head
/// without a body; `Transfer-Encoding: chunked` is framed too, for completeness. A body part
/// after a head that announced none fails its write instead of corrupting the connection.
/// Header fields go through ``HTTPWireFormat/writeFields(_:into:)``: a credential from the
/// environment with a stray newline, say, is left out rather than splitting the request.
package final class UpstreamRequestEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    package typealias OutboundIn = HTTPClientRequestPart
    package typealias OutboundOut = IOData

    package struct BodyWithoutFramingError: Error {}

    private typealias Framing = HTTPWireFormat.BodyFraming

    private var framing = Framing.none

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch self.unwrapOutboundIn(data) {
        case .head(let head):
            let head = self.serialize(head, allocator: context.channel.allocator)
            context.write(self.wrapOutboundOut(.byteBuffer(head)), promise: promise)
        case .body(let body):
            switch self.framing {
            case .none:
                promise?.fail(BodyWithoutFramingError())
            case .length:
                context.write(self.wrapOutboundOut(body), promise: promise)
            case .chunked:
                guard body.readableBytes > 0 else {
                    promise?.succeed(())
                    return
                }
                let size = HTTPWireFormat.chunkHeader(body.readableBytes, allocator: context.channel.allocator)
                context.write(self.wrapOutboundOut(.byteBuffer(size)), promise: nil)
                context.write(self.wrapOutboundOut(body), promise: nil)
                context.write(self.wrapOutboundOut(.byteBuffer(HTTPWireFormat.chunkEnd)), promise: promise)
            }
        case .end(let trailers):
            if self.framing == .chunked {
                let end = HTTPWireFormat.lastChunk(trailers: trailers, allocator: context.channel.allocator)
                context.write(self.wrapOutboundOut(.byteBuffer(end)), promise: promise)
            } else if let promise {
                context.write(
                    self.wrapOutboundOut(.byteBuffer(context.channel.allocator.buffer(capacity: 0))),
                    promise: promise
                )
            }
            self.framing = .none
        }
    }

    private func serialize(_ head: HTTPRequestHead, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 96 + head.uri.utf8.count + head.headers.count * 48)
        buffer.writeString(head.method.rawValue)
        buffer.writeStaticString(" ")
        buffer.writeString(head.uri)
        switch (head.version.major, head.version.minor) {
        case (1, 0): buffer.writeStaticString(" HTTP/1.0\r\n")
        default: buffer.writeStaticString(" HTTP/1.1\r\n")
        }
        var framing = Framing.none
        for (name, _) in head.headers {
            if name.caseInsensitiveEquals("content-length") {
                framing = .length
            } else if name.caseInsensitiveEquals("transfer-encoding") {
                framing = .chunked
            }
        }
        HTTPWireFormat.writeFields(head.headers, into: &buffer)
        if framing == .none && Self.definesContent(head.method) {
            // A POST (or PUT, PATCH, ...) without a body still says so.
            buffer.writeStaticString("Content-Length: 0\r\n")
        }
        buffer.writeStaticString("\r\n")
        self.framing = framing
        return buffer
    }

    /// Methods whose requests carry content by definition (RFC 9110 9.3).
    private static func definesContent(_ method: HTTPMethod) -> Bool {
        switch method {
        case .GET, .HEAD, .DELETE, .OPTIONS, .TRACE, .CONNECT: false
        default: true
        }
    }
}
