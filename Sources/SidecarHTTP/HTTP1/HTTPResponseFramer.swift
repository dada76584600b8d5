import NIOCore
import NIOHTTP1

/// Writes HTTP/1.1 responses as bytes for ``SidecarConnectionHandler``: the status line, the
/// headers, the framing the sidecar chose (`Content-Length` or chunked), chunk markers and
/// trailers.
///
/// It takes the place of NIO's `HTTPResponseEncoder` and `NIOHTTPResponseHeadersValidator`
/// (two channel handlers, a dynamic cast and a header scan per response part, about a tenth of
/// the sidecar's own CPU per request in a profile). The sidecar already decides the framing
/// itself: its callers never pass framing headers (``SidecarHeaders/isDropped(responseHeader:)``
/// removes them from upstream answers).
///
/// The validator's guarantee is kept (``HTTPWireFormat/writeFields(_:into:)``): a header whose
/// name is not an RFC 9110 token, or whose value holds a control character (CR, LF, NUL, ...),
/// is left out, never written, so nothing from an upstream or a request body (a model name,
/// say) can split the response.
package struct HTTPResponseFramer {
    package typealias Framing = HTTPWireFormat.BodyFraming

    /// The framing of the response in flight (`.none` also for a `HEAD` request, 1xx, 204, 304:
    /// body writes are dropped).
    private(set) var framing = Framing.none

    /// The response head. `contentLength` nil means chunked (unless no body is allowed).
    package mutating func head(
        status: HTTPResponseStatus,
        headers: HTTPHeaders,
        contentLength: Int?,
        closeConnection: Bool,
        isHeadRequest: Bool,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 160 + headers.count * 48)
        Self.writeStatusLine(status, into: &buffer)
        HTTPWireFormat.writeFields(headers, into: &buffer)
        let code = status.code
        let bodyForbidden = code < 200 || code == 204 || code == 304
        if bodyForbidden {
            self.framing = .none
        } else if let contentLength {
            buffer.writeStaticString("Content-Length: ")
            buffer.writeString(String(contentLength))
            buffer.writeStaticString("\r\n")
            self.framing = isHeadRequest ? .none : .length
        } else {
            buffer.writeStaticString("Transfer-Encoding: chunked\r\n")
            self.framing = isHeadRequest ? .none : .chunked
        }
        if closeConnection {
            buffer.writeStaticString("Connection: close\r\n")
        }
        buffer.writeStaticString("\r\n")
        return buffer
    }

    /// `HTTP/1.1 100 Continue`, sent before reading a body the client announced with `Expect`.
    package static func continueHead(allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 25)
        buffer.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
        return buffer
    }

    private static func writeStatusLine(_ status: HTTPResponseStatus, into buffer: inout ByteBuffer) {
        switch status.code {
        case 200: buffer.writeStaticString("HTTP/1.1 200 OK\r\n")
        default:
            buffer.writeStaticString("HTTP/1.1 ")
            buffer.writeString(String(status.code))
            buffer.writeStaticString(" ")
            let reason = status.reasonPhrase
            // The reason phrase is free text on the wire (RFC 9112 5.1): control characters only are refused.
            buffer.writeString(HTTPWireFormat.isFieldValue(reason) ? reason : "")
            buffer.writeStaticString("\r\n")
        }
    }
}
