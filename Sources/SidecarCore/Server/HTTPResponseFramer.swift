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
/// The validator's guarantee is kept: a header whose name is not an RFC 9110 token, or whose
/// value holds a control character (CR, LF, NUL, ...), is left out, never written, so nothing
/// from an upstream or a request body (a model name, say) can split the response.
struct HTTPResponseFramer {
    /// How the body of the response in flight is delimited.
    enum Framing: Equatable {
        /// `Content-Length` was sent: body bytes go out as they are.
        case length
        /// `Transfer-Encoding: chunked`: each body write is one chunk; the end writes `0` and trailers.
        case chunked
        /// No body may follow (a `HEAD` request, 1xx, 204, 304): body writes are dropped.
        case none
    }

    /// The framing of the response in flight.
    private(set) var framing = Framing.none

    /// The response head. `contentLength` nil means chunked (unless no body is allowed).
    mutating func head(
        status: HTTPResponseStatus,
        headers: HTTPHeaders,
        contentLength: Int?,
        closeConnection: Bool,
        isHeadRequest: Bool,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 160 + headers.count * 48)
        Self.writeStatusLine(status, into: &buffer)
        for (name, value) in headers where Self.isToken(name) && Self.isFieldValue(value) {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
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

    /// The chunk-size line for a body write of `count` bytes (chunked framing only).
    static func chunkHeader(_ count: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 18)
        buffer.writeString(String(count, radix: 16))
        buffer.writeStaticString("\r\n")
        return buffer
    }

    /// The end of a chunked body: the last chunk and the trailers.
    static func lastChunk(trailers: HTTPHeaders?, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 5 + (trailers?.count ?? 0) * 48)
        buffer.writeStaticString("0\r\n")
        for (name, value) in trailers ?? [:] where Self.isToken(name) && Self.isFieldValue(value) {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
        return buffer
    }

    /// `HTTP/1.1 100 Continue`, sent before reading a body the client announced with `Expect`.
    static func continueHead(allocator: ByteBufferAllocator) -> ByteBuffer {
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
            buffer.writeString(Self.isFieldValue(reason) ? reason : "")
            buffer.writeStaticString("\r\n")
        }
    }

    /// RFC 9110 5.1: a field name is a non-empty token (``tokenBits``).
    static func isToken(_ name: String) -> Bool {
        let valid = name.utf8.withContiguousStorageIfAvailable { bytes in
            !bytes.isEmpty && bytes.allSatisfy { Self.isTokenByte($0) }
        }
        return valid ?? (!name.isEmpty && name.utf8.allSatisfy { Self.isTokenByte($0) })
    }

    /// RFC 9110 5.5: a field value holds no control characters other than horizontal tab
    /// (so no CR, LF or NUL). Bytes from 0x80 up (obs-text) are allowed.
    static func isFieldValue(_ value: String) -> Bool {
        let valid = value.utf8.withContiguousStorageIfAvailable { bytes in
            bytes.allSatisfy { Self.isFieldValueByte($0) }
        }
        return valid ?? value.utf8.allSatisfy { Self.isFieldValueByte($0) }
    }

    @inline(__always)
    private static func isFieldValueByte(_ byte: UInt8) -> Bool {
        (byte >= 0x20 && byte != 0x7F) || byte == UInt8(ascii: "\t")
    }

    @inline(__always)
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        byte < 128 && (byte < 64 ? tokenBits.low : tokenBits.high) & (1 << UInt64(byte & 63)) != 0
    }

    /// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" /
    /// DIGIT / ALPHA, as two 64-bit masks over bytes 0-63 and 64-127 (a test rebuilds them from
    /// that list).
    static let tokenBits: (low: UInt64, high: UInt64) = (0x03FF_6CFA_0000_0000, 0x57FF_FFFF_C7FF_FFFE)
}
