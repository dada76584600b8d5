import NIOCore
import NIOHTTP1

/// HTTP/1.1 message syntax shared by the sidecar's own writers (``HTTPResponseFramer`` towards
/// clients, ``UpstreamRequestEncoder`` towards upstreams): header fields, chunk markers and
/// trailers, with the checks that keep a message from being split.
package enum HTTPWireFormat {
    /// How the body of the message in flight is delimited.
    package enum BodyFraming: Equatable {
        /// `Content-Length` was sent: body bytes go out as they are.
        case length
        /// `Transfer-Encoding: chunked`: each body write is one chunk; the end writes `0` and trailers.
        case chunked
        /// No body follows.
        case none
    }

    /// Writes `name: value` lines, leaving out any field whose name is not a token or whose
    /// value holds a control character: such a field could end the head early or start a new one.
    ///
    /// All fields are copied in one write (each `ByteBuffer` write checks exclusive access at run
    /// time, and a head has a dozen fields of four pieces each).
    package static func writeFields(_ fields: HTTPHeaders, into buffer: inout ByteBuffer) {
        var capacity = 0
        for (name, value) in fields { capacity += name.utf8.count + value.utf8.count + 4 }
        guard capacity > 0 else { return }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { output in
            var written = 0
            for (name, value) in fields where Self.isToken(name) && Self.isFieldValue(value) {
                written = Self.copy(name, to: output, at: written)
                output[written] = UInt8(ascii: ":")
                output[written + 1] = UInt8(ascii: " ")
                written = Self.copy(value, to: output, at: written + 2)
                output[written] = UInt8(ascii: "\r")
                output[written + 1] = UInt8(ascii: "\n")
                written += 2
            }
            return written
        }
    }

    /// Copies the UTF-8 of `string` into `output` at `offset`; returns the offset after it.
    private static func copy(_ string: String, to output: UnsafeMutableRawBufferPointer, at offset: Int) -> Int {
        let copied = string.utf8.withContiguousStorageIfAvailable { bytes in
            UnsafeMutableRawBufferPointer(rebasing: output[offset..<(offset + bytes.count)])
                .copyMemory(from: UnsafeRawBufferPointer(bytes))
            return bytes.count
        }
        if let copied { return offset + copied }
        var index = offset
        for byte in string.utf8 {
            output[index] = byte
            index += 1
        }
        return index
    }

    /// Ends every chunk of a chunked body (one buffer, shared by all writes).
    package static let chunkEnd = ByteBuffer(staticString: "\r\n")

    /// The chunk-size line for a body write of `count` bytes (chunked framing only).
    package static func chunkHeader(_ count: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 18)
        buffer.writeString(String(count, radix: 16))
        buffer.writeStaticString("\r\n")
        return buffer
    }

    /// The end of a chunked body: the last chunk and the trailers.
    package static func lastChunk(trailers: HTTPHeaders?, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 5 + (trailers?.count ?? 0) * 48)
        buffer.writeStaticString("0\r\n")
        if let trailers { Self.writeFields(trailers, into: &buffer) }
        buffer.writeStaticString("\r\n")
        return buffer
    }

    /// RFC 9110 5.1: a field name is a non-empty token (``tokenBits``).
    package static func isToken(_ name: String) -> Bool {
        let valid = name.utf8.withContiguousStorageIfAvailable { bytes in
            !bytes.isEmpty && bytes.allSatisfy { Self.isTokenByte($0) }
        }
        return valid ?? (!name.isEmpty && name.utf8.allSatisfy { Self.isTokenByte($0) })
    }

    /// RFC 9110 5.5: a field value holds no control characters other than horizontal tab
    /// (so no CR, LF or NUL). Bytes from 0x80 up (obs-text) are allowed.
    package static func isFieldValue(_ value: String) -> Bool {
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
    package static let tokenBits: (low: UInt64, high: UInt64) = (0x03FF_6CFA_0000_0000, 0x57FF_FFFF_C7FF_FFFE)
}
